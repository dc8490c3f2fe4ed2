#pragma once

// e^x as the vector kernels compute it (softmax's 8- and 16-float rows, GELU's Gaussian):
// x = n·ln 2 + r, |r| <= ln 2 / 2, e^r by Cephes' degree-7 polynomial (~1 ulp), 2^n through the
// exponent bits. Below e^-87, just above fp32's smallest normal, the result is 0 (LibTorch gives
// up to 1.7e-38): a subnormal product costs a microcode assist per vector on Intel cores. NaN
// stays NaN.
namespace vit::models::exp_constants {
constexpr float kLowest = -87.0F, kLog2e = 1.44269504088896341F;
constexpr float kLn2High = 0.693359375F, kLn2Low = -2.12194440E-4F;  // ln 2 in two parts, the first exact
constexpr float kPolynomial[] = {1.9875691500E-4F, 1.3981999507E-3F, 8.3334519073E-3F,
                                 4.1665795894E-2F, 1.6666665459E-1F, 5.0000001201E-1F};
}  // namespace vit::models::exp_constants
