"""Real Hopper and Ampere kernel names fall in their categories by name alone (as in CUDA-graph replay,
where no host op encloses them), and ops_per_token counts launches, so a CUDA graph's saving shows."""

import pytest

from harness.measure.profile.analysis import summarize
from harness.measure.profile.categories import name_category
from harness.measure.profile.timeline import DeviceSpan, HostEvent, Launch
from harness.measure.profile.trace import Trace

# Kernel names as CUDA 12 / torch 2.x profiles spell them (cuBLAS, cuBLASLt, cuDNN, FlashAttention,
# PyTorch's mem-efficient attention, inductor's Triton kernels, ATen, NCCL).
KERNELS = {
    "nvjet_tst_128x64_64x4_1x2_h_bz_coopA_NNT": "linear",
    "nvjet_hsh_192x192_64x3_2x1_v_bz_coopB_NTN": "linear",
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas": "linear",
    "ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_64x3_tn": "linear",
    (
        "void splitKreduce_kernel<32, 16, int, float, __nv_bfloat16, float, __nv_bfloat16, true, false, false"
        ">(cublasSplitKParams<float>, float const*, __nv_bfloat16 const*, __nv_bfloat16*, float const*, float"
        " const*, __nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16*, void*, long, float*, int*)"
    ): "linear",
    (
        "void gemv2T_kernel_val<int, int, __nv_bfloat16, __nv_bfloat16, float, float, 128, 16, 4, 4, false, f"
        "alse, cublasGemvParamsEx<int, cublasGemvTensorStridedBatched<__nv_bfloat16 const>, cublasGemvTensorS"
        "tridedBatched<__nv_bfloat16 const>, cublasGemvTensorStridedBatched<__nv_bfloat16>, float> >(cublasGe"
        "mvParamsEx<int, cublasGemvTensorStridedBatched<__nv_bfloat16 const>, cublasGemvTensorStridedBatched<"
        "__nv_bfloat16 const>, cublasGemvTensorStridedBatched<__nv_bfloat16>, float>, float, float)"
    ): "linear",
    "void at::native::tinygemm_m16n8k16_chunk_kernel<at::native::KReductionType::None, 128, 4, 8, 8>": "linear",
    "triton_tem_fused_mm_0": "linear",
    "flash_fwd_kernel": "attention",
    (
        "void pytorch_flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, false, false, "
        "cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 4, cutlass::bfloat16_t> >, false, true, false"
        ", false, false, true, false, false>(pytorch_flash::Flash_fwd_params)"
    ): "attention",
    (
        "fmha_cutlassF_bf16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::bfloat16_t"
        ", cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)"
    ): "attention",
    "cudnn_generated_fort_native_sdpa_sm90_knob_7_64x128x64_4x1x1_kernel0_0": "attention",
    (
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, at::native::(ano"
        "nymous namespace)::SoftMaxForwardEpilogue>(float*, float const*, int)"
    ): "attention",
    (
        "sm80_xmma_fprop_implicit_gemm_indexed_wo_smem_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x16x64_stag"
        "e4_warpsize4x1x1_g1_tensor16x8x16_kernel"
    ): "conv",
    "triton_poi_fused_add_mul_silu_0": "elementwise",
    "triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0": "norm",
    (
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, at::de"
        "tail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3>"
        ")"
    ): "elementwise",
    (
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float,"
        " float, float>, unsigned int, c10::BFloat16, 4> >(at::native::ReduceOp<float, at::native::MeanOps<fl"
        "oat, float, float, float>, unsigned int, c10::BFloat16, 4>)"
    ): "elementwise",
    (
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<c10::BFloat16, at::native::ArgMaxOps<c10"
        "::BFloat16>, unsigned int, long, 4> >(at::native::ReduceOp<c10::BFloat16, at::native::ArgMaxOps<c10:"
        ":BFloat16>, unsigned int, long, 4>)"
    ): "sampling",
    (
        "void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous namespace)::Opaqu"
        "eType<2u>, unsigned int, 4, 64, 64>(at::native::(anonymous namespace)::OpaqueType<2u>*, at::native::"
        "(anonymous namespace)::CatArrInputTensorMetadata<at::native::(anonymous namespace)::OpaqueType<2u>, "
        "unsigned int, 64, 64>, at::native::(anonymous namespace)::TensorSizeStride<unsigned int, 4u>, int, u"
        "nsigned int)"
    ): "kv_cache",
    "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)": "communication",
    "triton_per_fused_0": "fused",
}


@pytest.mark.parametrize(("name", "category"), KERNELS.items(), ids=[name[:40] for name in KERNELS])
def test_real_kernel_names_fall_in_their_category(name, category):
    """Each real kernel name decides its category alone, as it must in a CUDA-graph replay."""
    assert name_category(name) == category


PRE, DEC = "harness::phase::prefill", "harness::phase::decode"
KERNELS_PER_TOKEN = 3


def decode_trace(graphed: bool) -> Trace:
    """Prefill plus two decode tokens of three kernels each: launched one by one, or from one CUDA graph."""
    host = [HostEvent(PRE, 0.0, 1.0, is_op=False)]
    launches = [Launch("cudaLaunchKernel", 0.1, 1), Launch("cudaMemcpyAsync", 0.2, 2)]
    device = [DeviceSpan("nvjet_tst_128x64_64x4_1x2_h_bz_coopA_NNT", 0.3, 0.5, 1)]
    correlation = 10
    for token in range(2):
        start = 1.0 + token
        host.append(HostEvent(DEC, start, start + 1.0, is_op=False))
        for kernel in range(KERNELS_PER_TOKEN):
            if not graphed or kernel == 0:
                correlation += 1
                name = "cudaGraphLaunch" if graphed else ("cuLaunchKernel" if kernel else "cudaLaunchKernel")
                launches.append(Launch(name, start + 0.1 * (kernel + 1), correlation, is_graph=graphed))
            device.append(DeviceSpan("flash_fwd_kernel", start + 0.5 + 0.1 * kernel, start + 0.55 + 0.1 * kernel, correlation))
    return Trace(host, launches, device)


def test_ops_per_token_counts_launches_so_a_graph_replay_is_one():
    """Eager decode launches each kernel (3 per token); a graph replay launches all three at once (1 per
    token); copies are not launches."""
    eager, graphed = summarize(decode_trace(graphed=False)), summarize(decode_trace(graphed=True))
    assert eager["ops_unit"] == graphed["ops_unit"] == "launches"
    assert eager["ops_per_token"] == KERNELS_PER_TOKEN
    assert graphed["ops_per_token"] == 1
