#pragma once

#include <opencv2/core/mat.hpp>

namespace vit::data {

// In-place pixel adjustments of an 8-bit grey or RGB image, with torchvision's definitions.
// A factor of 1 leaves the image unchanged; saturation and hue leave grey images unchanged.
void adjust_brightness(cv::Mat& image, double factor);  // scale towards black
void adjust_contrast(cv::Mat& image, double factor);    // blend with the mean grey level
void adjust_saturation(cv::Mat& image, double factor);  // blend with the greyscale image
void adjust_hue(cv::Mat& image, double shift);          // rotate hue by shift (in turns, [-0.5, 0.5])
void adjust_sharpness(cv::Mat& image, double factor);   // blend with a smoothed copy (border kept)
void posterize(cv::Mat& image, int bits);               // keep the top `bits` bits
void solarize(cv::Mat& image, int threshold);           // invert values >= threshold
void autocontrast(cv::Mat& image);                      // stretch each channel to [0, 255]
void equalize(cv::Mat& image);                          // histogram-equalize each channel

}  // namespace vit::data
