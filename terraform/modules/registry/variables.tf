variable "name" {
  description = "Prefix of the repository names (<name>-envoy, <name>-control-plane) and of the KMS alias."
  type        = string
}

variable "repositories" {
  description = "Repository suffixes, one per image the release workflow builds."
  type        = list(string)
}

variable "untagged_expiry_days" {
  description = "Days after which an untagged image (an orphan of an aborted push) is expired."
  type        = number
  default     = 7
}

variable "keep_releases" {
  description = "Release tags (v*) kept per repository; older ones are expired."
  type        = number
  default     = 50
}
