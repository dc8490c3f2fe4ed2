# vitcpp on Debian bookworm with Debian's CPU LibTorch:
#   docker build -t vitcpp . && docker run --rm vitcpp info --model vit_base_patch16_224
#
# CUDA: put a CUDA LibTorch 2.x tree (e.g. an unpacked PyTorch wheel's torch/ folder) into the
# build context and point TORCH_DIR at its share/cmake/Torch inside the image, e.g.
#   docker build --build-arg TORCH_DIR=/opt/vitcpp/third_party/torch/share/cmake/Torch -t vitcpp:cuda .
# (the CUDA toolkit that LibTorch was built against must be installed in the image as well).
FROM debian:bookworm-slim

ARG TORCH_DIR=""
ENV DEBIAN_FRONTEND=noninteractive

WORKDIR /opt/vitcpp
COPY . .
RUN VIT_TORCH_DIR="${TORCH_DIR}" VIT_BUILD_TESTS=OFF scripts/setup.sh \
    && ln -s /opt/vitcpp/build/vit /usr/local/bin/vit \
    && rm -rf /var/lib/apt/lists/*

ENTRYPOINT ["vit"]
