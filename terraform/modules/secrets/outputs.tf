output "provider_secret_arns" {
  description = "Provider secret ARNs by the env var name Envoy exposes to the filter."
  value       = { for k, s in aws_secretsmanager_secret.provider : k => s.arn }
}

output "control_plane_secret_arns" {
  description = "Control-plane token secret ARNs by env var name (CP_ADMIN_TOKEN, CP_WATCH_TOKEN)."
  value       = { for k, s in aws_secretsmanager_secret.control_plane : k => s.arn }
}
