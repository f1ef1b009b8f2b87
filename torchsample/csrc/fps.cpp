// Farthest point sampling: operator schema.
//
// points (b, n, 3) floating, lengths (b,) int64 (cloud i uses points[i, :lengths[i]]),
// start_indices (b,) int64 (the first sample of each cloud), initial_distances (b, n)
// of the points' dtype or None. A point's running distance starts at
// initial_distances (or +inf) and becomes min(distance, squared distance to each new
// sample); a sampled point's distance is set to -1 so it is never picked again. The
// next sample is the point with the largest distance, the smallest index among ties.
// Returns (b, n_samples) int64 indices.

#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(torchsample, m) {
  m.def(
      "farthest_point_sample(Tensor points, Tensor lengths, int n_samples, "
      "Tensor start_indices, Tensor? initial_distances=None) -> Tensor");
}
