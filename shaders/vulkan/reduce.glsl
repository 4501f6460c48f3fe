// Workgroup sums in a fixed order for the reducing shaders (BIAS_GRAD, BATCHNORM). Built twice: with
// SUBGROUP (a -D define, for devices whose compute stage has subgroup arithmetic) each subgroup adds
// its lanes with subgroupAdd and one invocation then adds the subgroups' sums in subgroup order, three
// barriers in all; without it, a tree in shared memory, log2(workgroup) + 2 barriers. Either order is
// fixed for a device and build, so results repeat; the two differ from each other in the last bits.
#ifndef VT_REDUCE_GLSL
#define VT_REDUCE_GLSL
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

shared float vt_red_a[256];
shared float vt_red_b[256];

// a and b summed over the workgroup (a power of two <= 256 invocations), returned to every invocation.
// Call from uniform control flow.
void vt_wg_sum2(inout float a, inout float b) {
    uint t = gl_LocalInvocationID.x;
#ifdef SUBGROUP
    a = subgroupAdd(a);
    b = subgroupAdd(b);
    if (subgroupElect()) {
        vt_red_a[gl_SubgroupID] = a;
        vt_red_b[gl_SubgroupID] = b;
    }
    barrier();
    if (t == 0u) {
        for (uint i = 1u; i < gl_NumSubgroups; i++) {
            vt_red_a[0] += vt_red_a[i];
            vt_red_b[0] += vt_red_b[i];
        }
    }
    barrier();
#else
    vt_red_a[t] = a;
    vt_red_b[t] = b;
    barrier();
    for (uint w = gl_WorkGroupSize.x / 2u; w > 0u; w >>= 1) {
        if (t < w) {
            vt_red_a[t] += vt_red_a[t + w];
            vt_red_b[t] += vt_red_b[t + w];
        }
        barrier();
    }
#endif
    a = vt_red_a[0];
    b = vt_red_b[0];
    barrier();
}

float vt_wg_sum(float v) {
    float unused = 0.0;
    vt_wg_sum2(v, unused);
    return v;
}
#endif
