variable "name" {
  description = "Resource name prefix."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the secrets."
  type        = string
}

variable "secret_names" {
  description = "Provider credential env var name => description."
  type        = map(string)
}
