variable "name" {
  description = "Resource name prefix; the resource server identifier is https://<name>."
  type        = string
}

variable "domain_prefix" {
  description = "Cognito hosted domain prefix (token endpoint)."
  type        = string
}

variable "scopes" {
  description = "Custom scopes: short name => description."
  type        = map(string)
}

variable "m2m_clients" {
  description = "App clients: name => scope short names."
  type        = map(list(string))
}
