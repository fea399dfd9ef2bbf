# What SREs look at. Metric names are the filter's Prometheus metrics (filter/src/metrics.rs),
# scraped by the ADOT sidecar (deploy/otel-collector.yaml) and published as EMF into the
# namespace below with their labels as dimensions (provider, model, status, type).

locals {
  namespace = "AIGateway"
  alarm_actions = var.alarm_sns_topic_arn == "" ? [] : [var.alarm_sns_topic_arn]
  # ALB latency/volume come from AWS/ApplicationELB; provider-side numbers from the filter.
  metrics = {
    requests = "ai_gateway_requests_total"
    tokens   = "ai_gateway_tokens_total"
    rejected = "ai_gateway_rejected_total"
    ttft     = "gen_ai_server_time_to_first_token_ms"
    # OpenTelemetry GenAI semantic-convention histograms (gen_ai.client.token.usage, ...).
    token_usage      = "gen_ai_client_token_usage"
    request_duration = "gen_ai_server_request_duration_ms"
    time_per_token   = "gen_ai_server_time_per_output_token_us"
  }
}

resource "aws_cloudwatch_log_group" "this" {
  # metrics: the collector's EMF events, from which CloudWatch extracts the AIGateway metrics.
  for_each          = toset(["envoy", "control-plane", "collector", "metrics"])
  name              = "/${var.name}/${each.value}"
  retention_in_days = var.retention_days
  kms_key_id        = var.kms_key_arn
}

# WAF requires the aws-waf-logs- prefix.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_dashboard" "gateway" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Request volume (ALB) and provider attempts"
          region = var.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix],
            [{ expression = "SEARCH('{${local.namespace},provider,model,status} MetricName=\"${local.metrics.requests}\"', 'Sum', 60)", id = "attempts", label = "" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Error rate (%)"
          region = var.region
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { id = "t5", stat = "Sum", visible = false }],
            ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { id = "e5", stat = "Sum", visible = false }],
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix, { id = "n", stat = "Sum", visible = false }],
            [{ expression = "100 * (FILL(t5,0) + FILL(e5,0)) / n", id = "rate", label = "5xx %" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Latency (target response time)"
          region = var.region
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p50" }],
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p99" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Time to first token (ms)"
          region = var.region
          period = 60
          metrics = [
            [{ expression = "SEARCH('{${local.namespace},provider,model} MetricName=\"${local.metrics.ttft}\"', 'p90', 60)", id = "ttft", label = "" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 24, height = 6
        properties = {
          title  = "Tokens per provider"
          region = var.region
          period = 300
          metrics = [
            [{ expression = "SEARCH('{${local.namespace},provider,model,type} MetricName=\"${local.metrics.tokens}\"', 'Sum', 300)", id = "tokens", label = "" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 18, width = 12, height = 6
        properties = {
          title  = "Provider request duration p90 (ms, gen_ai.server.request.duration)"
          region = var.region
          period = 60
          metrics = [
            [{ expression = "SEARCH('{${local.namespace},provider,model,status} MetricName=\"${local.metrics.request_duration}\"', 'p90', 60)", id = "duration", label = "" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 18, width = 12, height = 6
        properties = {
          title  = "Time per output token p50 (us, gen_ai.server.time_per_output_token)"
          region = var.region
          period = 60
          metrics = [
            [{ expression = "SEARCH('{${local.namespace},provider,model} MetricName=\"${local.metrics.time_per_token}\"', 'p50', 60)", id = "tpot", label = "" }],
          ]
        }
      },
    ]
  })
}

# Saved Logs Insights queries over Envoy's access log. envoy/render.py writes one JSON object
# per request ("log":"request": status, flags, duration_ms, upstream_cluster, attempts, provider,
# model, input_tokens, output_tokens, time_to_first_token_ms, cost_usd, caller) and one per
# attempt ("log":"attempt"); Logs Insights discovers JSON fields by itself. Filter-state values
# (tokens, TTFT, cost) are JSON strings: Envoy 1.40's formatters have no typed output for them.
# tests/ops/test_collector.py checks every field named here is one render.py writes.
locals {
  request_lines = "filter log = \"request\""
}

resource "aws_cloudwatch_query_definition" "errors_by_provider" {
  name            = "${var.name}/errors-by-provider"
  log_group_names = [aws_cloudwatch_log_group.this["envoy"].name]
  query_string    = <<-EOQ
    ${local.request_lines} and status >= 400
    | stats count() as errors by provider, model, status, flags
    | sort errors desc
  EOQ
}

resource "aws_cloudwatch_query_definition" "slow_requests" {
  name            = "${var.name}/slowest-requests"
  log_group_names = [aws_cloudwatch_log_group.this["envoy"].name]
  query_string    = <<-EOQ
    ${local.request_lines} and ispresent(duration_ms)
    | sort duration_ms desc
    | display @timestamp, path, provider, model, status, duration_ms, time_to_first_token_ms, attempts, request_id
    | limit 50
  EOQ
}

resource "aws_cloudwatch_query_definition" "latency_by_provider" {
  name            = "${var.name}/latency-by-provider"
  log_group_names = [aws_cloudwatch_log_group.this["envoy"].name]
  query_string    = <<-EOQ
    ${local.request_lines} and ispresent(provider)
    | stats count() as requests, pct(duration_ms, 50) as p50_ms, pct(duration_ms, 99) as p99_ms, pct(time_to_first_token_ms, 90) as ttft_p90_ms by provider, model, bin(5m)
  EOQ
}

resource "aws_cloudwatch_query_definition" "retries" {
  name            = "${var.name}/retried-requests"
  log_group_names = [aws_cloudwatch_log_group.this["envoy"].name]
  query_string    = <<-EOQ
    ${local.request_lines} and attempts > 1
    | stats count() as retried by upstream_cluster, provider, status
  EOQ
}

resource "aws_cloudwatch_query_definition" "usage_by_caller" {
  name            = "${var.name}/tokens-and-cost-by-caller"
  log_group_names = [aws_cloudwatch_log_group.this["envoy"].name]
  query_string    = <<-EOQ
    ${local.request_lines} and ispresent(provider)
    | stats count() as requests, sum(input_tokens) as input_tokens_total, sum(output_tokens) as output_tokens_total, sum(cost_usd) as cost_usd_total by caller, provider, model
    | sort cost_usd_total desc
  EOQ
}

resource "aws_cloudwatch_query_definition" "control_plane_errors" {
  name            = "${var.name}/control-plane-errors"
  log_group_names = [aws_cloudwatch_log_group.this["control-plane"].name]
  query_string    = <<-EOQ
    fields @timestamp, @message
    | filter @message like /ERROR|WARN/
    | sort @timestamp desc
    | limit 100
  EOQ
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${var.name}-5xx-rate"
  alarm_description   = "More than 5% of requests answered 5xx for 5 minutes (runbook: docs/operations.md)"
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 5
  threshold           = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "100 * (FILL(t5,0) + FILL(e5,0)) / n"
    return_data = true
  }
  metric_query {
    id = "t5"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "e5"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "n"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "latency_p99" {
  alarm_name          = "${var.name}-latency-p99"
  alarm_description   = "p99 target response time above 60 s for 10 minutes"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 10
  threshold           = 60
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "no_healthy_hosts" {
  alarm_name          = "${var.name}-unhealthy-hosts"
  alarm_description   = "Envoy tasks failing ALB health checks"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
