# Build: docker build -t statusflow .   (.dockerignore keeps .git, ./data and node_modules out)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/statusflow .

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
	&& rm -rf /var/lib/apt/lists/* && useradd -r -u 10001 -d /data statusflow && mkdir /data && chown statusflow /data
COPY --from=build /out/statusflow /usr/local/bin/statusflow
USER statusflow
ENV STATUSFLOW_DATA_DIR=/data STATUSFLOW_ADDR=:8080
VOLUME /data
EXPOSE 8080
# The image has no curl: the binary asks itself (GET /readyz on STATUSFLOW_ADDR).
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 CMD ["/usr/local/bin/statusflow", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/statusflow"]
