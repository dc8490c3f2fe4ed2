// Links against the libraries unpacked by scripts/gpu/debs.sh, through the same old-style RPATH as
// the GPU build, and uses each: OpenCV encodes and decodes a PNG (its codecs load the GDAL and
// GDCM stubs), yaml-cpp parses, spdlog formats through libfmt, libturbojpeg starts.
#include <spdlog/spdlog.h>
#include <turbojpeg.h>
#include <yaml-cpp/yaml.h>

#include <opencv2/imgcodecs.hpp>

#include <vector>

int main() {
  const cv::Mat image(4, 6, CV_8UC3, cv::Scalar(10, 20, 30));
  std::vector<unsigned char> png;
  cv::imencode(".png", image, png);
  const cv::Mat decoded = cv::imdecode(png, cv::IMREAD_COLOR);
  const auto yaml = YAML::Load("side: 6")["side"].as<int>();
  tjhandle jpeg = tjInitDecompress();
  const bool ok = decoded.cols == yaml && cv::norm(decoded, image) == 0.0 && jpeg != nullptr;
  tjDestroy(jpeg);
  spdlog::info("carried libraries: PNG of {} bytes decoded to {}x{}, {}", png.size(), decoded.cols, decoded.rows,
               ok ? "as encoded" : "WRONG");
  return ok ? 0 : 1;
}
