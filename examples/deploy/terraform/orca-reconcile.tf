# The reconcile step as a Terraform module: the Lambda function with its environment, IAM role,
# timeout, network and log group. ORCA owns the queue, the database secret and the VPC; pass them in.
#
# Build the code first (from the project that holds the handler), then apply:
#
#   npx esbuild examples/lambda-handler.ts --bundle --platform=node --target=node22 --format=esm \
#     --external:@aws-sdk/* --minify --keep-names --outfile=build/orca-reconcile/index.mjs \
#     --banner:js="import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);"
#
# and set var.bundle_dir to that build/orca-reconcile directory. The function's ARN (output
# function_arn) is the Resource of the reconcile task in ORCA's state machine.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }
  }
}

variable "prefix" {
  type        = string
  description = "ORCA's deployment prefix, used in resource names."
}

variable "internal_report_queue_arn" {
  type        = string
  description = "ARN of ORCA's internal report queue (the FIFO queue the job messages come from)."
}

variable "internal_report_queue_url" {
  type        = string
  description = "URL of the same queue: the job message is deleted from it."
}

variable "db_connect_info_secret_arn" {
  type        = string
  description = "ARN of ORCA's database secret (host, port, user_database, user_username, user_password)."
}

variable "db_secret_kms_key_arn" {
  type        = string
  default     = null
  description = "ARN of the secret's customer-managed KMS key, if it has one."
}

variable "lambda_subnet_ids" {
  type        = list(string)
  description = "Subnets of the database's VPC the function runs in. They must reach SQS and Secrets Manager (VPC endpoints or a NAT gateway)."
}

variable "lambda_security_group_ids" {
  type        = list(string)
  description = "Security groups of the function; the database must accept connections from one of them."
}

variable "bundle_dir" {
  type        = string
  description = "Directory holding the esbuild bundle (index.mjs) of the handler."
}

variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  function_name = "${var.prefix}_orca_reconcile"
}

data "archive_file" "orca_reconcile" {
  type        = "zip"
  source_dir  = var.bundle_dir
  output_path = "${path.module}/build/${local.function_name}.zip"
}

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "orca_reconcile" {
  statement {
    sid       = "DeleteTheJobMessage"
    actions   = ["sqs:DeleteMessage"]
    resources = [var.internal_report_queue_arn]
  }
  statement {
    sid       = "ReadTheDatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.db_connect_info_secret_arn]
  }
  dynamic "statement" {
    for_each = var.db_secret_kms_key_arn == null ? [] : [var.db_secret_kms_key_arn]
    content {
      sid       = "DecryptTheDatabaseSecret"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "orca_reconcile" {
  name               = "${local.function_name}_role"
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "orca_reconcile" {
  name   = "${local.function_name}_policy"
  role   = aws_iam_role.orca_reconcile.id
  policy = data.aws_iam_policy_document.orca_reconcile.json
}

# Network interfaces in the VPC, and CloudWatch Logs.
resource "aws_iam_role_policy_attachment" "vpc_access" {
  role       = aws_iam_role.orca_reconcile.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_cloudwatch_log_group" "orca_reconcile" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = 30
  tags              = var.tags
}

resource "aws_lambda_function" "orca_reconcile" {
  function_name    = local.function_name
  description      = "ORCA internal reconciliation: phantom, orphan and mismatch reports (orca-reconcile)"
  role             = aws_iam_role.orca_reconcile.arn
  runtime          = "nodejs22.x"
  handler          = "index.handler"
  filename         = data.archive_file.orca_reconcile.output_path
  source_code_hash = data.archive_file.orca_reconcile.output_base64sha256
  # ORCA's defaults for its Lambdas; the handler stops the database work 10 s before the timeout.
  timeout     = 720
  memory_size = 128

  environment {
    variables = {
      INTERNAL_REPORT_QUEUE_URL  = var.internal_report_queue_url
      DB_CONNECT_INFO_SECRET_ARN = var.db_connect_info_secret_arn
      POWERTOOLS_SERVICE_NAME    = "orca-reconcile"
      POWERTOOLS_LOG_LEVEL       = "INFO"
    }
  }

  vpc_config {
    subnet_ids         = var.lambda_subnet_ids
    security_group_ids = var.lambda_security_group_ids
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.orca_reconcile.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.orca_reconcile, aws_iam_role_policy_attachment.vpc_access]
}

output "function_arn" {
  value       = aws_lambda_function.orca_reconcile.arn
  description = "The Resource of the reconcile task state."
}
