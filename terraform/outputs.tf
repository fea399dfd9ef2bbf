output "gateway_dns_name" {
  description = "DNS name of the ALB; point the gateway's host name (CNAME/alias) at it."
  value       = module.edge.alb_dns_name
}

output "token_endpoint" {
  description = "Cognito OAuth2 token endpoint for client_credentials."
  value       = module.identity.token_endpoint
}

output "m2m_client_ids" {
  description = "App client ids per m2m client (secrets: aws cognito-idp describe-user-pool-client)."
  value       = module.identity.client_ids
}

output "table_name" {
  description = "DynamoDB table of the control plane (CP_DYNAMODB_TABLE)."
  value       = module.data.table_name
}

output "provider_secret_arns" {
  description = "Secrets Manager ARNs to fill with provider keys, by env var name."
  value       = module.secrets.provider_secret_arns
}

output "dashboard_name" {
  description = "CloudWatch dashboard with volume, errors, latency, TTFT and tokens."
  value       = module.observability.dashboard_name
}

output "ecs_cluster_name" {
  description = "ECS cluster running the Envoy and control-plane services."
  value       = module.compute.cluster_name
}
