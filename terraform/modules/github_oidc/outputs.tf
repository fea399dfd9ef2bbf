output "release_role_arn" {
  description = "Role the publish job assumes (AWS_RELEASE_ROLE_ARN workflow variable)."
  value       = aws_iam_role.release.arn
}

output "plan_role_arn" {
  description = "Role the plan job assumes (AWS_PLAN_ROLE_ARN workflow variable)."
  value       = aws_iam_role.plan.arn
}

output "provider_arn" {
  description = "The GitHub OIDC provider the roles trust."
  value       = local.provider_arn
}
