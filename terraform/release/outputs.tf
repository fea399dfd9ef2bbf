output "ecr_registry" {
  description = "ECR_REGISTRY workflow variable."
  value       = module.registry.registry
}

output "repository_urls" {
  description = "Repository URLs of the two images."
  value       = module.registry.repository_urls
}

output "release_role_arn" {
  description = "AWS_RELEASE_ROLE_ARN workflow variable."
  value       = module.github_oidc.release_role_arn
}

output "plan_role_arn" {
  description = "AWS_PLAN_ROLE_ARN workflow variable."
  value       = module.github_oidc.plan_role_arn
}
