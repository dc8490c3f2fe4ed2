# vitcpp on Debian bookworm with Debian's CPU LibTorch, in two stages: `build` compiles vit with
# the development packages; the runtime image holds the installed vit (bin/vit, configs, manual
# page, completion) and only the shared libraries it loads: no compilers, no Python, no test
# packages. It runs as the unprivileged user `vit`.
#
#   docker build -t vitcpp .
#   docker run --rm vitcpp --version
#   docker run --rm -v /usr/share/datasets/fashion-mnist:/usr/share/datasets/fashion-mnist:ro \
#       -v "$PWD/runs:/home/vit/runs" vitcpp train --set train.epochs=1
#
# scripts/docker_check.sh builds it offline-capable (a debootstrapped base image) and checks it.
# CUDA: put a CUDA LibTorch 2.x tree into the build context and pass
#   --build-arg TORCH_DIR=/src/third_party/torch/share/cmake/Torch
# (the runtime stage then needs that tree and the CUDA libraries it was built against as well).

FROM debian:bookworm-slim AS build
ARG TORCH_DIR=""
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The package layer comes before the sources: a code change reuses it.
COPY scripts/setup.sh scripts/setup.sh
RUN VIT_PACKAGES=build VIT_BUILD=0 scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVIT_BUILD_TESTS=OFF ${TORCH_DIR:+-DTorch_DIR=$TORCH_DIR} \
    && cmake --build build -j"$(nproc)" \
    && cmake --install build --prefix /opt/vitcpp \
    && build/vit --version
# The Debian packages of the libraries vit loads (BLAS through its alternatives link included).
RUN ldd /opt/vitcpp/bin/vit | awk '/=> \// {print $3}' | xargs -r readlink -f | xargs -r dpkg -S 2>/dev/null \
      | cut -d: -f1 | sort -u > /runtime-packages \
    && cat /runtime-packages

FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
    && xargs apt-get install -y -qq --no-install-recommends < /tmp/runtime-packages \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
    && useradd --create-home --uid 10001 vit
COPY --from=build /opt/vitcpp /opt/vitcpp
ENV PATH=/opt/vitcpp/bin:$PATH
USER vit
WORKDIR /home/vit
ENTRYPOINT ["vit"]
CMD ["--help"]
