/*
 * tests/emu/include/cub/cub.cuh — what kernels/cuda uses of CUB, for the CPU emulation
 * (tests/emu/cuda_emu.h; this folder comes before the toolkit's on the include path):
 * DeviceRadixSort::SortPairs as a stable sort of (key, value) pairs by the key bits
 * begin_bit..end_bit-1 taken as an unsigned number (what a radix sort of those bits
 * orders by), on host memory, at once (or recorded while a stream capture is open).
 */
#ifndef RLVR_TESTS_EMU_CUB_CUH
#define RLVR_TESTS_EMU_CUB_CUH

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tests/emu/cuda_emu.h"

namespace cub {
struct DeviceRadixSort {
    template <class K, class V>
    static cudaError_t SortPairs(void *temp, size_t &temp_bytes, const K *keys_in, K *keys_out,
                                 const V *vals_in, V *vals_out, int n, int begin_bit = 0,
                                 int end_bit = (int)sizeof(K) * 8, cudaStream_t = 0) {
        if (!temp) { /* the sizing call */
            temp_bytes = 16;
            return cudaSuccess;
        }
        auto op = [=]() {
            const int width = end_bit - begin_bit;
            const uint64_t mask = width >= 64 ? ~0ull : ((1ull << width) - 1ull);
            std::vector<std::pair<uint64_t, int>> order((size_t)n);
            for (int i = 0; i < n; i++) {
                uint64_t bits = 0;
                memcpy(&bits, &keys_in[i], sizeof(K));
                order[(size_t)i] = {(bits >> begin_bit) & mask, i};
            }
            std::stable_sort(order.begin(), order.end(),
                             [](const auto &a, const auto &b) { return a.first < b.first; });
            std::vector<K> ko((size_t)n);
            std::vector<V> vo((size_t)n);
            for (int i = 0; i < n; i++) {
                ko[(size_t)i] = keys_in[order[(size_t)i].second];
                vo[(size_t)i] = vals_in[order[(size_t)i].second];
            }
            std::copy(ko.begin(), ko.end(), keys_out);
            std::copy(vo.begin(), vo.end(), vals_out);
        };
        if (emu::capture) emu::capture->push_back(op);
        else op();
        return cudaSuccess;
    }
};
} /* namespace cub */

#endif
