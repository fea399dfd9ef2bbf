variable "name" {
  description = "Prefix of the role names (<name>-release, <name>-plan)."
  type        = string
}

variable "github_repository" {
  description = "The repository whose release workflow may assume the roles, as owner/name."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name, without wildcards."
  }
}

variable "tag_pattern" {
  description = "Tags (IAM StringLike pattern) whose workflow runs may assume the roles."
  type        = string
  default     = "v*"
}

variable "create_provider" {
  description = "Create the account's GitHub OIDC provider; false when it already exists (one per account)."
  type        = bool
  default     = true
}

variable "existing_provider_arn" {
  description = "ARN of the existing GitHub OIDC provider when create_provider is false."
  type        = string
  default     = ""
}

variable "repository_arns" {
  description = "ECR repositories the release role may push to."
  type        = list(string)
}

variable "state_bucket_arn" {
  description = "S3 bucket holding the stack's terraform state (keys ai-gateway/<environment>.tfstate)."
  type        = string
}

variable "state_kms_key_arn" {
  description = "KMS key of the state bucket when it uses SSE-KMS; empty for SSE-S3."
  type        = string
  default     = ""
}
