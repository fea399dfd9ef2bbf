#!/usr/bin/env bash
# Release step of .github/workflows/release.yml (job `publish`), after the scans passed: pushes
# each scanned OCI archive to ECR as it is (same bytes, same digests), signs the image index and
# every platform manifest with Cosign keyless (GitHub OIDC), and attests the SBOMs: each Syft
# SBOM to its platform's manifest, the cargo SBOM of the binary inside to the index.
# Writes `envoy=<repo>@sha256:...` and `control-plane=...` to $GITHUB_OUTPUT for terraform.
#
# Environment: TAG (v1.2.3), IMAGES_DIR (image-<name>/image.tar), SBOM_DIR (<name>.linux-<arch>
# .spdx.json, *.cdx.json), ECR_REGISTRY, AWS_REGION, IMAGE_PREFIX; AWS credentials and the
# Actions OIDC token as configure-aws-credentials and `permissions: id-token: write` leave them.
set -euo pipefail

: "${TAG:?}" "${IMAGES_DIR:?}" "${SBOM_DIR:?}" "${ECR_REGISTRY:?}" "${AWS_REGION:?}" "${IMAGE_PREFIX:?}"
[[ "$TAG" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-.][0-9A-Za-z.]+)?$ ]] || { echo "::error::not a release tag: $TAG" >&2; exit 1; }

# One auth file for skopeo (push) and cosign (signatures and attestations are registry objects).
auth="$HOME/.docker/config.json"
mkdir -p "$(dirname "$auth")"
aws ecr get-login-password --region "$AWS_REGION" \
  | skopeo login --authfile "$auth" --username AWS --password-stdin "$ECR_REGISTRY"

publish() {  # name  cargo-sbom-glob
  local name="$1" cargo_sbom="$2" repo tar digest index arch platform_digest sbom
  repo="$ECR_REGISTRY/$IMAGE_PREFIX-$name"
  tar="$IMAGES_DIR/image-$name/image.tar"
  [[ -f "$tar" ]] || { echo "::error::$tar missing" >&2; return 1; }

  # ECR tags are immutable: a second push of the same tag fails here, before anything is signed.
  skopeo copy --all --preserve-digests --authfile "$auth" --digestfile "$RUNNER_TEMP/$name.digest" \
    "oci-archive:$tar" "docker://$repo:$TAG"
  digest="$(cat "$RUNNER_TEMP/$name.digest")"
  echo "pushed $repo:$TAG = $digest"

  # --recursive: the index and each platform manifest, so a pull by either digest verifies.
  cosign sign --yes --recursive "$repo@$digest"

  index="$(skopeo inspect --raw --authfile "$auth" "docker://$repo@$digest")"
  for arch in amd64 arm64; do
    platform_digest="$(jq -r --arg a "$arch" \
      '.manifests[] | select(.platform.os == "linux" and .platform.architecture == $a) | .digest' <<<"$index")"
    [[ "$platform_digest" == sha256:* ]] || { echo "::error::no linux/$arch manifest in $repo@$digest" >&2; return 1; }
    sbom="$SBOM_DIR/$name.linux-$arch.spdx.json"
    cosign attest --yes --type spdxjson --predicate "$sbom" "$repo@$platform_digest"
  done
  for sbom in $cargo_sbom; do
    cosign attest --yes --type cyclonedx --predicate "$sbom" "$repo@$digest"
  done
  echo "$name=$repo@$digest" >>"$GITHUB_OUTPUT"
}

# The filter (inside the Envoy image) and the control-plane binary have cargo SBOMs.
publish envoy "$SBOM_DIR/ai-gateway-filter.wasm32-wasip1.cdx.json"
publish control-plane "$(ls "$SBOM_DIR"/control-plane.*.cdx.json)"
