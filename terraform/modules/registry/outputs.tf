output "repository_urls" {
  description = "Repository URLs by suffix (envoy, control-plane)."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARNs by suffix; the release role may push to these only."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}

output "registry" {
  description = "Registry host (<account>.dkr.ecr.<region>.amazonaws.com), the ECR_REGISTRY workflow variable."
  value       = split("/", values(aws_ecr_repository.this)[0].repository_url)[0]
}

output "kms_key_arn" {
  description = "KMS key encrypting the repositories."
  value       = aws_kms_key.this.arn
}
