#version 450
// One instanced quad per shape (see render/src/draw/shape.rs for the layout):
// kind 0 = line segment with round caps, 1 = rounded rectangle (filled or
// outlined), 2 = glyph from the text atlas. Coordinates are in pixels, y down.

layout(location = 0) in vec4 a;     // segment: p0, p1 | rect, glyph: min, max
layout(location = 1) in vec4 b;     // segment: half width | rect: radius, border | glyph: uv min, uv max
layout(location = 2) in vec4 color; // sRGB values, straight alpha

// The pipeline's kind (see shape.frag); the instance's own `kind` field
// only groups instances into draws on the CPU side.
layout(constant_id = 0) const uint KIND = 0u;

layout(push_constant) uniform Push {
    vec2 viewport;
} pc;

layout(location = 0) out vec2 v_pos;
layout(location = 1) out vec2 v_uv;
layout(location = 2) flat out vec4 v_a;
layout(location = 3) flat out vec4 v_b;
layout(location = 4) flat out vec4 v_color;

const vec2 CORNERS[6] = vec2[](vec2(0, 0), vec2(1, 0), vec2(0, 1), vec2(0, 1), vec2(1, 0), vec2(1, 1));

void main() {
    vec2 c = CORNERS[gl_VertexIndex];
    vec2 p;
    v_uv = vec2(0.0);
    if (KIND == 0u) {
        // An oriented box around the segment, grown by the half width and one
        // pixel of feather so the round caps and the anti-aliased edge fit.
        float grow = max(b.x, 0.5) + 1.0;
        vec2 d = a.zw - a.xy;
        float len = length(d);
        vec2 dir = len > 1e-4 ? d / len : vec2(1.0, 0.0);
        vec2 n = vec2(-dir.y, dir.x);
        p = a.xy - dir * grow + dir * (len + 2.0 * grow) * c.x + n * grow * (2.0 * c.y - 1.0);
    } else if (KIND == 1u) {
        p = mix(a.xy - 1.0, a.zw + 1.0, c);
    } else if (KIND == 3u) {
        p = mix(a.xy, a.zw, c);
    } else {
        p = mix(a.xy, a.zw, c);
        v_uv = mix(b.xy, b.zw, c);
    }
    v_pos = p;
    v_a = a;
    v_b = b;
    v_color = color;
    gl_Position = vec4(p / pc.viewport * 2.0 - 1.0, 0.0, 1.0);
}
