# Least privilege. The broker may change ingress only of security groups carrying the gate tag, may tag only the rules
# it creates (or rules it already manages), and may describe (EC2's describe calls take no resource-level conditions).
# The safety sweep may describe and revoke, nothing else.

locals {
  sg_arn   = "arn:${local.partition}:ec2:${var.region}:${local.account}:security-group/*"
  rule_arn = "arn:${local.partition}:ec2:${var.region}:${local.account}:security-group-rule/*"
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

data "aws_iam_policy_document" "broker" {
  statement {
    sid       = "IngressOnTaggedGatesOnly"
    actions   = ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]
    resources = [local.sg_arn]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${var.gate_tag_key}"
      values   = [var.name]
    }
  }
  # AuthorizeSecurityGroupIngress also names the rule it creates; it must be created with the managed tag.
  statement {
    sid       = "CreateRulesOnlyWithManagedTag"
    actions   = ["ec2:AuthorizeSecurityGroupIngress"]
    resources = [local.rule_arn]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/portcullis:managed"
      values   = ["true"]
    }
  }
  # Revoking names the rule too: only rules the broker made. (`exposure scan --fix`, which removes foreign rules that
  # open RDP to the world, runs with an operator's credentials, not these.)
  statement {
    sid       = "RevokeOnlyManagedRules"
    actions   = ["ec2:RevokeSecurityGroupIngress"]
    resources = [local.rule_arn]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/portcullis:managed"
      values   = ["true"]
    }
  }
  statement {
    sid       = "TagRulesAtCreation"
    actions   = ["ec2:CreateTags"]
    resources = [local.rule_arn]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["AuthorizeSecurityGroupIngress"]
    }
  }
  # A second grant on the same source and port shares the rule: the broker adds its grant tag and moves the expiry.
  statement {
    sid       = "RetagManagedRules"
    actions   = ["ec2:CreateTags"]
    resources = [local.rule_arn]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/portcullis:managed"
      values   = ["true"]
    }
    condition {
      test     = "ForAllValues:StringLike"
      variable = "aws:TagKeys"
      values   = ["portcullis:*"]
    }
  }
  statement {
    sid       = "Describe"
    actions   = ["ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "sweep" {
  statement {
    sid       = "RevokeOnTaggedGatesOnly"
    actions   = ["ec2:RevokeSecurityGroupIngress"]
    resources = [local.sg_arn]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${var.gate_tag_key}"
      values   = [var.name]
    }
  }
  statement {
    sid       = "RevokeOnlyManagedRules"
    actions   = ["ec2:RevokeSecurityGroupIngress"]
    resources = [local.rule_arn]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/portcullis:managed"
      values   = ["true"]
    }
  }
  statement {
    sid       = "Describe"
    actions   = ["ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "broker" {
  name               = "${var.name}-broker"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "broker" {
  name   = "gates"
  role   = aws_iam_role.broker.id
  policy = data.aws_iam_policy_document.broker.json
}

resource "aws_iam_role" "sweep" {
  name               = "${var.name}-sweep"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "sweep" {
  name   = "revoke-expired"
  role   = aws_iam_role.sweep.id
  policy = data.aws_iam_policy_document.sweep.json
}

# ECS itself (not the broker) pulls the image, writes logs and reads the two secrets into the environment.
data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "ReadTheTwoSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.oidc_web.arn, aws_db_instance.this.master_user_secret[0].secret_arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  statement {
    sid       = "PullImage"
    actions   = ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-tasks"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "RunTheSweepTask"
    actions   = ["ecs:RunTask"]
    resources = [aws_ecs_task_definition.sweep.arn_without_revision, "${aws_ecs_task_definition.sweep.arn_without_revision}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }
  statement {
    sid       = "PassTheSweepRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.sweep.arn, aws_iam_role.execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "run-sweep"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}
