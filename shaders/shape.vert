#version 450
// One instanced quad per shape (see render/src/draw/shape.rs for the layout):
// kind 0 = line segment with round caps, 1 = rounded rectangle (filled or
// outlined), 2 = glyph from the text atlas. Coordinates are in pixels, y down.

layout(location = 0) in vec4 a;     // segment: p0, p1 | rect, glyph: min, max
layout(location = 1) in vec4 b;     // segment: half width | rect: radius, border | glyph: uv min, uv max
layout(location = 2) in vec4 color; // sRGB, straight alpha
layout(location = 3) in uint kind;

layout(push_constant) uniform Push {
    vec2 viewport;
} pc;

layout(location = 0) out vec2 v_pos;
layout(location = 1) out vec2 v_uv;
layout(location = 2) flat out vec4 v_a;
layout(location = 3) flat out vec4 v_b;
layout(location = 4) flat out vec4 v_color;
layout(location = 5) flat out uint v_kind;

const vec2 CORNERS[6] = vec2[](vec2(0, 0), vec2(1, 0), vec2(0, 1), vec2(0, 1), vec2(1, 0), vec2(1, 1));

// The exact sRGB transfer curve: blending happens in linear light, the sRGB
// target encodes on write.
vec3 to_linear(vec3 c) {
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), greaterThan(c, vec3(0.04045)));
}

void main() {
    vec2 c = CORNERS[gl_VertexIndex];
    vec2 p;
    v_uv = vec2(0.0);
    if (kind == 0u) {
        // An oriented box around the segment, grown by the half width and one
        // pixel of feather so the round caps and the anti-aliased edge fit.
        float grow = max(b.x, 0.5) + 1.0;
        vec2 d = a.zw - a.xy;
        float len = length(d);
        vec2 dir = len > 1e-4 ? d / len : vec2(1.0, 0.0);
        vec2 n = vec2(-dir.y, dir.x);
        p = a.xy - dir * grow + dir * (len + 2.0 * grow) * c.x + n * grow * (2.0 * c.y - 1.0);
    } else if (kind == 1u) {
        p = mix(a.xy - 1.0, a.zw + 1.0, c);
    } else {
        p = mix(a.xy, a.zw, c);
        v_uv = mix(b.xy, b.zw, c);
    }
    v_pos = p;
    v_a = a;
    v_b = b;
    v_color = vec4(to_linear(color.rgb), color.a);
    v_kind = kind;
    gl_Position = vec4(p / pc.viewport * 2.0 - 1.0, 0.0, 1.0);
}
