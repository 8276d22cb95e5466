#version 450
// Coverage from a signed distance, one pixel of anti-aliasing, premultiplied
// output (the pipeline blends ONE, ONE_MINUS_SRC_ALPHA) of sRGB values.

layout(location = 0) in vec2 v_pos;
layout(location = 1) in vec2 v_uv;
layout(location = 2) flat in vec4 v_a;
layout(location = 3) flat in vec4 v_b;
layout(location = 4) flat in vec4 v_color;

layout(set = 0, binding = 0) uniform sampler2D atlas;

// One pipeline per kind (0 segment, 1 rectangle, 2 glyph, 3 corner): the branch is
// resolved when the pipeline is built. A per-fragment branch on the kind
// halved lavapipe's fill rate.
layout(constant_id = 0) const uint KIND = 0u;

layout(location = 0) out vec4 out_color;

float segment_coverage() {
    vec2 pa = v_pos - v_a.xy;
    vec2 ba = v_a.zw - v_a.xy;
    float h = clamp(dot(pa, ba) / max(dot(ba, ba), 1e-8), 0.0, 1.0);
    // Lines thinner than a pixel are drawn one pixel wide and fainter, so a
    // hairline keeps its weight instead of breaking up.
    float hw = max(v_b.x, 0.5);
    float thin = min(v_b.x / 0.5, 1.0);
    float d = length(pa - ba * h) - hw;
    return clamp(0.5 - d, 0.0, 1.0) * thin;
}

float rect_coverage() {
    vec2 center = (v_a.xy + v_a.zw) * 0.5;
    vec2 half_size = max((v_a.zw - v_a.xy) * 0.5, vec2(0.0));
    float r = clamp(v_b.x, 0.0, min(half_size.x, half_size.y));
    vec2 q = abs(v_pos - center) - half_size + r;
    float d = length(max(q, 0.0)) + min(max(q.x, q.y), 0.0) - r;
    float border = v_b.y;
    if (border > 0.0) {
        d = abs(d + border * 0.5) - border * 0.5;
    }
    return clamp(0.5 - d, 0.0, 1.0);
}

// Outside the quarter circle centred on corner b.z of the square.
float corner_coverage() {
    float id = v_b.z;
    vec2 select_corner = vec2(mod(id, 2.0), floor(id / 2.0));
    vec2 centre = mix(v_a.xy, v_a.zw, select_corner);
    float d = length(v_pos - centre) - v_b.x;
    return clamp(d + 0.5, 0.0, 1.0);
}

void main() {
    float coverage;
    if (KIND == 0u) {
        coverage = segment_coverage();
    } else if (KIND == 1u) {
        coverage = rect_coverage();
    } else if (KIND == 3u) {
        coverage = corner_coverage();
    } else {
        coverage = textureLod(atlas, v_uv, 0.0).r;
    }
    float alpha = v_color.a * coverage;
    out_color = vec4(v_color.rgb * alpha, alpha);
}
