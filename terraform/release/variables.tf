variable "name" {
  description = "Prefix of the repositories and roles; the workflow's IMAGE_PREFIX must match."
  type        = string
  default     = "ai-gateway"
}

variable "region" {
  description = "AWS region of the registry (the AWS_REGION workflow variable)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose release tags may push images."
  type        = string
}

variable "tag_pattern" {
  description = "Release tags allowed to assume the roles (IAM StringLike pattern)."
  type        = string
  default     = "v*"
}

variable "create_oidc_provider" {
  description = "Create GitHub's OIDC provider in this account (false if it exists already)."
  type        = bool
  default     = true
}

variable "existing_oidc_provider_arn" {
  description = "ARN of the existing GitHub OIDC provider when create_oidc_provider is false."
  type        = string
  default     = ""
}

variable "state_bucket_arn" {
  description = "S3 bucket of the stack's terraform state, read by the plan role."
  type        = string
}

variable "state_kms_key_arn" {
  description = "KMS key of the state bucket if it uses SSE-KMS; empty otherwise."
  type        = string
  default     = ""
}
