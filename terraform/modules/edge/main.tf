# Public entry: TLS 1.3 ALB, WAF in front, the ALB's own JWT validation (Cognito) before any
# request reaches Envoy. Envoy's jwt_authn checks the token again (defence in depth).

# Envoy listener and its health route: ops/container_bootstrap.py LISTENER_PORT.
locals {
  envoy_port = 10000
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "HTTPS from clients to the ALB; ALB to the Envoy tasks"
  vpc_id      = var.vpc_id

  ingress {
    #checkov:skip=CKV_AWS_260:Port 443 only; the gateway is a public API behind WAF and JWT validation.
    description = "HTTPS from clients"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "To the Envoy listener inside the VPC"
    from_port   = local.envoy_port
    to_port     = local.envoy_port
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_91:Per-request logs are Envoy's JSON access logs in CloudWatch (provider, model, tokens, status), which carry more than ALB logs; WAF logs cover rejected traffic.
  #checkov:skip=CKV2_AWS_20:There is no HTTP listener to redirect; only 443 is open.
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  # Streaming completions can be silent for a long time between tokens.
  idle_timeout = 300
}

resource "aws_lb_target_group" "envoy" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the ALB; ALB to task traffic stays inside the VPC's private subnets, and Envoy then speaks TLS to the providers.
  name                 = "${var.name}-envoy"
  port                 = local.envoy_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  # Any path the gateway does not route gets Envoy's OpenAI-shaped 404: a cheap liveness probe
  # that goes through the listener and filter chain without calling a provider.
  health_check {
    path                = "/healthz"
    matcher             = "404"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
    timeout             = 5
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      status_code  = "404"
      message_body = "{\"error\":{\"message\":\"not found\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"not_found\"}}"
    }
  }
}

# The model APIs take two kinds of bearer (ARCHITECTURE.md section 1): Cognito access tokens and
# the control plane's virtual keys. A JWT (always starts with "eyJ", base64 of '{"') is validated
# by the ALB here: issuer, signature, exp, and the invoke scope. Anything else is a virtual key,
# which only the filter can check (hash lookup in the pushed snapshot), so it is forwarded as is.
resource "aws_lb_listener_rule" "api_jwt" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  condition {
    path_pattern {
      values = ["/v1/*"]
    }
  }

  condition {
    http_header {
      http_header_name = "Authorization"
      values           = ["Bearer eyJ*", "bearer eyJ*"]
    }
  }

  action {
    type  = "jwt-validation"
    order = 1
    jwt_validation {
      issuer        = var.jwt_issuer
      jwks_endpoint = var.jwks_endpoint
      additional_claim {
        format = "space-separated-values"
        name   = "scope"
        values = [var.required_scope]
      }
    }
  }

  action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.envoy.arn
  }
}

resource "aws_lb_listener_rule" "api_virtual_key" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 20

  condition {
    path_pattern {
      values = ["/v1/*"]
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.envoy.arn
  }
}

resource "aws_wafv2_web_acl" "this" {
  name  = var.name
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  dynamic "rule" {
    for_each = {
      AWSManagedRulesCommonRuleSet          = 10
      AWSManagedRulesAmazonIpReputationList = 30
    }
    content {
      name     = rule.key
      priority = rule.value
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.key
          # Prompts are large JSON bodies: the common set's 8 KB body limit would block most
          # agent requests, so that one rule only counts.
          dynamic "rule_action_override" {
            for_each = rule.key == "AWSManagedRulesCommonRuleSet" ? ["SizeRestrictions_BODY"] : []
            content {
              name = rule_action_override.value
              action_to_use {
                count {}
              }
            }
          }
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = rule.key
        sampled_requests_enabled   = true
      }
    }
  }

  # The next two are written out rather than looped over: scanners only see static rules, and
  # these are the Log4j (CVE-2021-44228) and anonymising-proxy protections they look for.
  rule {
    name     = "AWSManagedRulesAnonymousIpList"
    priority = 40
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesAnonymousIpList"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 20
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "ip-rate-limit"
    priority = 50
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "ip-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [var.waf_log_group_arn]
  # Tokens must not land in logs.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}
