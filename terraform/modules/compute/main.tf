# ECS Fargate: the Envoy service (Envoy + ADOT collector sidecar) behind the ALB, and the control
# plane as its own service, reached by Envoy over ECS Service Connect.
# Names and ports here are the ones the code expects; tests/ops/test_terraform.py checks them
# against ops/container_bootstrap.py, Dockerfile.control and control-plane/src.

locals {
  envoy_port   = 10000 # ops/container_bootstrap.py LISTENER_PORT
  admin_port   = 9901  # ops/container_bootstrap.py ADMIN_PORT (loopback; health check, metrics scrape)
  cp_rest_port = 8090  # CP_LISTEN
  cp_grpc_port = 8091  # CP_GRPC_LISTEN; Envoy's watch stream
  # ops/container_bootstrap.py CONTROL_PLANE: Service Connect answers this name inside the tasks.
  cp_namespace = "ai-gateway.internal"
  cp_dns_name  = "control-plane.ai-gateway.internal"
  # The filter reads the watch token from this variable (envoy/render.py --watch-token-env default).
  watch_token_env = "AI_GATEWAY_WATCH_TOKEN"

  envoy_healthcheck = "exec 3<>/dev/tcp/127.0.0.1/${local.admin_port} && printf 'GET /ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"

  # ADOT sidecar: deploy/otel-collector.yaml verbatim (Envoy's Prometheus stats -> EMF in the
  # AIGateway namespace; Envoy's OTLP spans -> X-Ray). Its ${env:...} references are the
  # collector container's environment below; tests/ops/test_collector.py checks both agree.
  collector_config = file("${path.module}/../../../deploy/otel-collector.yaml")
  collector_env = {
    AWS_REGION                   = var.region
    AI_GATEWAY_METRICS_LOG_GROUP = var.metrics_log_group
  }
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enhanced"
  }
}

resource "aws_service_discovery_http_namespace" "this" {
  name        = local.cp_namespace
  description = "Service Connect namespace of the gateway"
}

# --- IAM: one execution role (image pull, logs, secrets), one task role per service ----------

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "InjectSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat(values(var.provider_secret_arns), values(var.control_plane_secret_arns))
  }
  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "inject-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_iam_role" "envoy" {
  name               = "${var.name}-envoy"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

data "aws_iam_policy_document" "envoy" {
  #checkov:skip=CKV_AWS_356:X-Ray trace segment APIs and cloudwatch:PutMetricData have no resource-level permissions; PutMetricData is limited to our namespace by condition.
  #checkov:skip=CKV_AWS_111:Same: these write actions only accept Resource "*".
  statement {
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"]
  }
  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["AIGateway"]
    }
  }
  statement {
    sid       = "EmfLogs"
    # The log group itself is terraform's (observability module: retention, KMS).
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [
      "arn:aws:logs:${var.region}:*:log-group:${var.metrics_log_group}",
      "arn:aws:logs:${var.region}:*:log-group:${var.metrics_log_group}:*",
    ]
  }
}

resource "aws_iam_role_policy" "envoy" {
  name   = "telemetry"
  role   = aws_iam_role.envoy.id
  policy = data.aws_iam_policy_document.envoy.json
}

resource "aws_iam_role" "control_plane" {
  name               = "${var.name}-control-plane"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

# Exactly the calls control-plane/src/store/dynamo.rs makes, on its one table.
data "aws_iam_policy_document" "control_plane" {
  statement {
    sid = "Table"
    actions = [
      "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
      "dynamodb:Query", "dynamodb:Scan", "dynamodb:TransactWriteItems", "dynamodb:BatchGetItem", "dynamodb:DescribeTable",
    ]
    resources = [var.table_arn]
  }
  statement {
    sid       = "TableKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }
  # Provider credentials given as Secrets Manager ARNs (control-plane/src/credentials.rs): only the
  # gateway's provider secrets, encrypted with the key above.
  dynamic "statement" {
    for_each = length(var.provider_secret_arns) > 0 ? [1] : []
    content {
      sid       = "ProviderSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = values(var.provider_secret_arns)
    }
  }
}

resource "aws_iam_role_policy" "control_plane" {
  name   = "table"
  role   = aws_iam_role.control_plane.id
  policy = data.aws_iam_policy_document.control_plane.json
}

# --- network -------------------------------------------------------------------------------------

resource "aws_security_group" "envoy" {
  name        = "${var.name}-envoy"
  description = "Envoy tasks: listener from the ALB; out to providers and the control plane"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Gateway listener from the ALB"
    from_port       = local.envoy_port
    to_port         = local.envoy_port
    protocol        = "tcp"
    security_groups = [var.alb_security_group_id]
  }

  egress {
    #checkov:skip=CKV_AWS_382:Providers (api.openai.com, api.anthropic.com, ...) are on the internet behind changing addresses; HTTPS only, through the NAT gateways.
    description = "HTTPS to providers and AWS endpoints"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "Control plane gRPC watch stream inside the VPC"
    from_port   = local.cp_grpc_port
    to_port     = local.cp_grpc_port
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
}

resource "aws_security_group" "control_plane" {
  name        = "${var.name}-control-plane"
  description = "Control plane: gRPC from Envoy, REST from inside the VPC"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Watch stream from the Envoy tasks"
    from_port       = local.cp_grpc_port
    to_port         = local.cp_grpc_port
    protocol        = "tcp"
    security_groups = [aws_security_group.envoy.id]
  }

  ingress {
    description = "Admin REST API from inside the VPC (CI runners, bastion)"
    from_port   = local.cp_rest_port
    to_port     = local.cp_rest_port
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }

  egress {
    description = "HTTPS to DynamoDB (gateway endpoint) and Secrets Manager/Logs (interface endpoints)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"] #checkov:skip=CKV_AWS_382:The DynamoDB gateway endpoint is reached through public service addresses routed by the endpoint; HTTPS only.
  }
}

# --- task definitions ------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "envoy" {
  family                   = "${var.name}-envoy"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 1024
  memory                   = 2048
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.envoy.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = "envoy"
      image                  = var.envoy_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "101:101"
      portMappings           = [{ name = "gateway", containerPort = local.envoy_port, protocol = "tcp" }]
      # Provider keys by the env var names the gateway config references; the watch token too.
      secrets = concat(
        [for k, arn in var.provider_secret_arns : { name = k, valueFrom = arn }],
        [{ name = local.watch_token_env, valueFrom = var.control_plane_secret_arns["CP_WATCH_TOKEN"] }],
      )
      healthCheck = {
        command     = ["CMD", "/bin/bash", "-c", local.envoy_healthcheck]
        interval    = 10
        timeout     = 3
        retries     = 3
        startPeriod = 15
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = var.envoy_log_group
          "awslogs-region"        = var.region
          "awslogs-stream-prefix" = "envoy"
        }
      }
      dependsOn = [{ containerName = "otel-collector", condition = "START" }]
    },
    {
      name                   = "otel-collector"
      image                  = var.adot_image
      essential              = false
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      command                = ["--config=env:AOT_CONFIG_CONTENT"]
      environment = concat(
        [{ name = "AOT_CONFIG_CONTENT", value = local.collector_config }],
        [for k, v in local.collector_env : { name = k, value = v }],
      )
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = var.collector_log_group
          "awslogs-region"        = var.region
          "awslogs-stream-prefix" = "collector"
        }
      }
    },
  ])
}

resource "aws_ecs_task_definition" "control_plane" {
  family                   = "${var.name}-control-plane"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 512
  memory                   = 1024
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.control_plane.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = "control-plane"
      image                  = var.control_plane_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      command                = ["serve"]
      portMappings = [
        { name = "rest", containerPort = local.cp_rest_port, protocol = "tcp", appProtocol = "http" },
        { name = "grpc", containerPort = local.cp_grpc_port, protocol = "tcp", appProtocol = "grpc" },
      ]
      environment = [
        { name = "CP_STORE", value = "dynamodb" },
        { name = "CP_DYNAMODB_TABLE", value = var.table_name },
        { name = "AWS_REGION", value = var.region },
        { name = "CP_LISTEN", value = "0.0.0.0:${local.cp_rest_port}" },
        { name = "CP_GRPC_LISTEN", value = "0.0.0.0:${local.cp_grpc_port}" },
        { name = "CP_LOG", value = "info" },
        { name = "CP_AUDIT_RETENTION_DAYS", value = tostring(var.audit_retention_days) },
      ]
      secrets = [
        { name = "CP_ADMIN_TOKEN", valueFrom = var.control_plane_secret_arns["CP_ADMIN_TOKEN"] },
        { name = "CP_WATCH_TOKEN", valueFrom = var.control_plane_secret_arns["CP_WATCH_TOKEN"] },
      ]
      # Distroless has no shell for a container health check; Service Connect's health and the
      # deployment circuit breaker catch a control plane that does not come up.
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = var.control_plane_log_group
          "awslogs-region"        = var.region
          "awslogs-stream-prefix" = "control-plane"
        }
      }
    },
  ])
}

# --- services ---------------------------------------------------------------------------------------

resource "aws_ecs_service" "control_plane" {
  name            = "${var.name}-control-plane"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.control_plane.arn
  desired_count   = 2
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.control_plane.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  service_connect_configuration {
    enabled   = true
    namespace = aws_service_discovery_http_namespace.this.arn
    service {
      port_name      = "grpc"
      discovery_name = "control-plane-grpc"
      client_alias {
        port     = local.cp_grpc_port
        dns_name = local.cp_dns_name
      }
    }
    service {
      port_name      = "rest"
      discovery_name = "control-plane-rest"
      client_alias {
        port     = local.cp_rest_port
        dns_name = local.cp_dns_name
      }
    }
  }
}

resource "aws_ecs_service" "envoy" {
  name                              = "${var.name}-envoy"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.envoy.arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = 30

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.envoy.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = "envoy"
    container_port   = local.envoy_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Client only: Envoy resolves the control plane's Service Connect name.
  service_connect_configuration {
    enabled   = true
    namespace = aws_service_discovery_http_namespace.this.arn
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by autoscaling after the first deploy
  }
}

# --- autoscaling ---------------------------------------------------------------------------------

resource "aws_appautoscaling_target" "envoy" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.envoy.name}"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

resource "aws_appautoscaling_policy" "envoy_cpu" {
  name               = "${var.name}-envoy-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.envoy.service_namespace
  scalable_dimension = aws_appautoscaling_target.envoy.scalable_dimension
  resource_id        = aws_appautoscaling_target.envoy.resource_id
  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "envoy_requests" {
  name               = "${var.name}-envoy-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.envoy.service_namespace
  scalable_dimension = aws_appautoscaling_target.envoy.scalable_dimension
  resource_id        = aws_appautoscaling_target.envoy.resource_id
  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = var.alb_resource_label
    }
  }
}
