#pragma once

#include "data/random.h"
#include "data/transform_options.h"

#include <opencv2/core/mat.hpp>

namespace vit::data {

// torchvision's RandAugment: num_ops operations drawn uniformly from its 14 (identity, shear x/y,
// translate x/y, rotate, brightness, colour, contrast, sharpness, posterize, solarize,
// autocontrast, equalize), each at `magnitude` out of num_magnitude_bins, signed ones with a
// random sign; areas uncovered by geometric operations are filled with zeros. In place.
void rand_augment(cv::Mat& image, const RandAugmentOptions& options, Random& random);

}  // namespace vit::data
