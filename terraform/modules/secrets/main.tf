# Secret containers only: values are put out of band (docs/operations.md) so they never sit in
# terraform state. ECS injects them as environment variables at task start.

resource "aws_secretsmanager_secret" "provider" {
  #checkov:skip=CKV2_AWS_57:Provider API keys are issued by OpenAI/Anthropic consoles; no Lambda can rotate them. Rotation is a runbook step (docs/operations.md "Rotate a provider key").
  for_each    = var.secret_names
  name        = "${var.name}/providers/${each.key}"
  description = each.value
  kms_key_id  = var.kms_key_arn
}

# Tokens of the control plane: admin (REST writes) and watch (Envoy's gRPC stream).
resource "aws_secretsmanager_secret" "control_plane" {
  #checkov:skip=CKV2_AWS_57:Comma-separated token lists rotate by adding the new token, redeploying, then removing the old one (docs/operations.md); a rotation Lambda would break the overlap.
  for_each    = toset(["CP_ADMIN_TOKEN", "CP_WATCH_TOKEN"])
  name        = "${var.name}/control-plane/${each.key}"
  description = "Control plane ${each.key}"
  kms_key_id  = var.kms_key_arn
}
