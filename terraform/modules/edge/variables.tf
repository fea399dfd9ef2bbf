variable "name" {
  description = "Resource name prefix."
  type        = string
}

variable "vpc_id" {
  description = "VPC id."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the ALB (two AZs)."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "jwt_issuer" {
  description = "Issuer the ALB requires in access tokens (Cognito user pool)."
  type        = string
}

variable "jwks_endpoint" {
  description = "JWKS URL the ALB verifies signatures with."
  type        = string
}

variable "required_scope" {
  description = "Scope every token must carry to reach the model APIs."
  type        = string
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes per source IP."
  type        = number
}

variable "waf_log_group_arn" {
  description = "CloudWatch log group (name starts with aws-waf-logs-) for WAF logs."
  type        = string
}
