# The broker service, the migrate task, and the tags-only safety sweep on a schedule.

data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  config_vars = {
    public_hostname     = var.public_hostname
    vpc_cidr            = data.aws_vpc.this.cidr_block
    db_endpoint         = aws_db_instance.this.endpoint
    oidc_issuer         = var.oidc_issuer
    oidc_web_client_id  = var.oidc_web_client_id
    oidc_cli_client_id  = var.oidc_cli_client_id
    oidc_groups_claim   = var.oidc_groups_claim
    oidc_mfa_amr        = var.oidc_mfa_amr
    oidc_mfa_acr        = var.oidc_mfa_acr
    admin_groups        = var.admin_groups
    audit_reader_groups = var.audit_reader_groups
    targets             = var.targets
    region              = var.region
    gates               = { for id, g in aws_security_group.gate : id => g.id }
  }
  broker_config = templatefile("${path.module}/portcullis.yaml.tftpl", merge(local.config_vars, { with_web_client = true }))
  # The sweep reads only the targets; it gets neither the OIDC secret nor the database password.
  sweep_config = templatefile("${path.module}/portcullis.yaml.tftpl", merge(local.config_vars, { with_web_client = false }))

  secrets = [
    { name = "OIDC_WEB_SECRET", valueFrom = aws_secretsmanager_secret.oidc_web.arn },
    { name = "PGPASSWORD", valueFrom = "${aws_db_instance.this.master_user_secret[0].secret_arn}:password::" },
  ]
  log = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.this.name
      awslogs-region        = var.region
      awslogs-stream-prefix = "portcullis"
    }
  }
  # Fargate has no config volume: a first container writes the rendered config into a task-local volume, read-only
  # to the broker. Both run as uid 1000 with a read-only root filesystem.
  config_writer = {
    name                   = "config"
    image                  = var.image
    essential              = false
    user                   = "1000:1000"
    readonlyRootFilesystem = true
    entryPoint             = ["node", "-e", "require('fs').writeFileSync('/etc/portcullis/portcullis.yaml', process.env.PORTCULLIS_CONFIG_YAML, { mode: 0o640 })"]
    mountPoints            = [{ sourceVolume = "config", containerPath = "/etc/portcullis", readOnly = false }]
    logConfiguration       = local.log
  }
  broker_container = {
    name                   = "portcullis"
    image                  = var.image
    essential              = true
    user                   = "1000:1000"
    readonlyRootFilesystem = true
    environment            = [{ name = "PORTCULLIS_CONFIG", value = "/etc/portcullis/portcullis.yaml" }]
    secrets                = local.secrets
    mountPoints = [
      { sourceVolume = "config", containerPath = "/etc/portcullis", readOnly = true },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    dependsOn        = [{ containerName = "config", condition = "SUCCESS" }]
    logConfiguration = local.log
    linuxParameters  = { capabilities = { drop = ["ALL"] }, initProcessEnabled = true }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "broker" {
  family                   = "${var.name}-broker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.broker.arn
  volume {
    name = "config"
  }
  volume {
    name = "tmp"
  }
  container_definitions = jsonencode([
    merge(local.config_writer, { environment = [{ name = "PORTCULLIS_CONFIG_YAML", value = local.broker_config }] }),
    merge(local.broker_container, {
      command      = ["serve"]
      portMappings = [{ containerPort = 8080, protocol = "tcp" }]
      healthCheck = {
        command     = ["CMD", "node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
    }),
  ])
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
}

# Run once per upgrade, before the service moves to the new image (docs/deploy.md, "Upgrades"):
#   aws ecs run-task --cluster <cluster> --task-definition <migrate_task_definition> --launch-type FARGATE --network-configuration ...
resource "aws_ecs_task_definition" "migrate" {
  family                   = "${var.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.sweep.arn
  volume {
    name = "config"
  }
  volume {
    name = "tmp"
  }
  container_definitions = jsonencode([
    merge(local.config_writer, { environment = [{ name = "PORTCULLIS_CONFIG_YAML", value = local.broker_config }] }),
    merge(local.broker_container, { name = "migrate", command = ["migrate"] }),
  ])
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
}

# The safety net: closes every managed rule whose expiry tag has passed, from AWS tags alone, even while every broker
# and the database are down. It holds no secret and may only describe and revoke.
resource "aws_ecs_task_definition" "sweep" {
  family                   = "${var.name}-sweep"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.sweep.arn
  volume {
    name = "config"
  }
  volume {
    name = "tmp"
  }
  container_definitions = jsonencode([
    merge(local.config_writer, { environment = [{ name = "PORTCULLIS_CONFIG_YAML", value = local.sweep_config }] }),
    merge(local.broker_container, { name = "sweep", secrets = [], command = ["sweep", "--once", "--tags-only", "--json"] }),
  ])
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
}

resource "aws_ecs_service" "broker" {
  name                               = "${var.name}-broker"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.broker.arn
  desired_count                      = var.replicas
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.broker.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.broker.arn
    container_name   = "portcullis"
    container_port   = 8080
  }
  depends_on = [aws_lb_listener.https]
}

resource "aws_scheduler_schedule" "sweep" {
  name                = "${var.name}-sweep"
  schedule_expression = var.sweep_schedule
  flexible_time_window {
    mode = "OFF"
  }
  target {
    arn      = aws_ecs_cluster.this.arn
    role_arn = aws_iam_role.scheduler.arn
    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.sweep.arn_without_revision
      launch_type         = "FARGATE"
      network_configuration {
        subnets          = var.private_subnet_ids
        security_groups  = [aws_security_group.broker.id]
        assign_public_ip = false
      }
    }
    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}
