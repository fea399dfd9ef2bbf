#!/usr/bin/env bash
# Release step of .github/workflows/release.yml (job `plan`): `terraform plan` of the whole stack
# for one environment with the images just pushed (by digest). Read-only: the plan role may read
# the state but not take its lock (-lock=false), nor change anything; a person applies.
#
# Environment: ENVIRONMENT (terraform/environments/<name>.tfvars), ENVOY_IMAGE and
# CONTROL_PLANE_IMAGE (repo@sha256:...), TF_STATE_BUCKET, AWS_REGION; AWS credentials.
set -euo pipefail

: "${ENVIRONMENT:?}" "${ENVOY_IMAGE:?}" "${CONTROL_PLANE_IMAGE:?}" "${TF_STATE_BUCKET:?}" "${AWS_REGION:?}"
[[ "$ENVIRONMENT" =~ ^[a-z0-9-]+$ ]] || { echo "::error::bad environment name: $ENVIRONMENT" >&2; exit 1; }
for image in "$ENVOY_IMAGE" "$CONTROL_PLANE_IMAGE"; do
  [[ "$image" == *@sha256:* ]] || { echo "::error::image not pinned by digest: $image" >&2; exit 1; }
done
vars="environments/$ENVIRONMENT.tfvars"
if [[ ! -f "terraform/$vars" ]]; then
  echo "::error::terraform/$vars missing: copy terraform/examples/prod.tfvars and fill it in" >&2
  exit 1
fi

terraform -chdir=terraform init -input=false \
  -backend-config="bucket=$TF_STATE_BUCKET" \
  -backend-config="key=ai-gateway/$ENVIRONMENT.tfstate" \
  -backend-config="region=$AWS_REGION" \
  -backend-config="encrypt=true" \
  -backend-config="use_lockfile=true"
terraform -chdir=terraform validate -no-color
terraform -chdir=terraform plan -input=false -lock=false -no-color -var-file="$vars" \
  -var "envoy_image=$ENVOY_IMAGE" -var "control_plane_image=$CONTROL_PLANE_IMAGE" \
  -out=release.tfplan | tee "$RUNNER_TEMP/plan.txt"

{
  echo "### terraform plan: $ENVIRONMENT"
  echo
  echo "Images: \`$ENVOY_IMAGE\`, \`$CONTROL_PLANE_IMAGE\`"
  echo
  echo '```'
  # The summary holds 1 MiB; the plan's end (the counts) matters most.
  tail -c 200000 "$RUNNER_TEMP/plan.txt"
  echo '```'
} >>"$GITHUB_STEP_SUMMARY"
