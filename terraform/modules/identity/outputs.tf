output "issuer" {
  description = "JWT issuer the ALB and Envoy's jwt_authn check."
  value       = "https://${aws_cognito_user_pool.this.endpoint}"
}

output "jwks_endpoint" {
  description = "JWKS URL of the user pool."
  value       = "https://${aws_cognito_user_pool.this.endpoint}/.well-known/jwks.json"
}

output "token_endpoint" {
  description = "OAuth2 token endpoint (client_credentials)."
  value       = "https://${aws_cognito_user_pool_domain.this.domain}.auth.${data.aws_region.current.region}.amazoncognito.com/oauth2/token"
}

output "invoke_scope" {
  description = "Full scope name required to call the model APIs."
  value       = "${aws_cognito_resource_server.gateway.identifier}/invoke"
}

output "client_ids" {
  description = "App client ids by name."
  value       = { for k, c in aws_cognito_user_pool_client.m2m : k => c.id }
}
