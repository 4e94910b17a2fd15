// The AWS module, checked offline as a scanner would: least-privilege IAM with tag conditions, no RDP ingress at rest,
// TLS at the load balancer, an encrypted private database with a managed password, and the tags-only sweep scheduled.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { filesUnder, read, rel, TF_DIR, terraformModule, which } from './helpers.ts';

type Statement = { sid?: string; actions: string[]; resources: string[]; condition?: { test: string; variable: string; values: string[] }[] };

const MUTATING = /^ec2:(AuthorizeSecurityGroupIngress|RevokeSecurityGroupIngress|CreateTags)$/;
const TAG_CONDITION = /^(aws:ResourceTag\/|aws:RequestTag\/|ec2:CreateAction$)/;

describe('infra/terraform/aws', () => {
  let tf: Awaited<ReturnType<typeof terraformModule>>;
  const statements = (doc: string): Statement[] => tf.data.aws_iam_policy_document[doc][0].statement;
  before(async () => {
    tf = await terraformModule();
  });

  it('parses every .tf file (hcl2json) and declares every variable and output with a description', () => {
    assert.ok(Object.keys(tf.files).length >= 8, Object.keys(tf.files).join(', '));
    for (const [name, v] of Object.entries(tf.variable)) assert.ok(v[0].description, `variable ${name} has no description`);
    for (const name of ['url', 'load_balancer_dns_name', 'gate_security_group_ids', 'oidc_web_secret_arn', 'migrate_task_definition']) assert.ok(tf.output[name], `output ${name}`);
  });

  it('IAM: the broker may change ingress only of tagged gates and only rules it tags; no wildcard action; only describe calls on "*"', () => {
    for (const doc of ['broker', 'sweep']) {
      for (const s of statements(doc)) {
        for (const a of s.actions) assert.doesNotMatch(a, /\*/, `${doc}/${s.sid}: wildcard action ${a}`);
        const mutating = s.actions.filter((a) => MUTATING.test(a));
        const other = s.actions.filter((a) => !MUTATING.test(a));
        if (mutating.length === 0) {
          assert.ok(other.every((a) => /^ec2:Describe/.test(a)), `${doc}/${s.sid}: only EC2 describe calls`);
          continue;
        }
        assert.deepEqual(other, [], `${doc}/${s.sid} mixes mutating and other actions`);
        assert.ok(!s.resources.includes('*'), `${doc}/${s.sid}: ${mutating.join(', ')} on "*"`);
        assert.ok(s.resources.every((r) => /\$\{local\.(sg_arn|rule_arn)\}/.test(r)), `${doc}/${s.sid}: resources ${s.resources.join(', ')}`);
        assert.ok((s.condition ?? []).some((c) => TAG_CONDITION.test(c.variable)), `${doc}/${s.sid}: ${mutating.join(', ')} without a tag condition`);
      }
    }
    // The group-level statement names the gate tag; every security-group ARN statement carries that condition.
    for (const doc of ['broker', 'sweep']) {
      const onGroups = statements(doc).filter((s) => s.resources.includes('${local.sg_arn}'));
      assert.ok(onGroups.length >= 1);
      for (const s of onGroups) assert.ok(s.condition!.some((c) => c.variable === 'aws:ResourceTag/${var.gate_tag_key}' && c.test === 'StringEquals' && c.values.join() === '${var.name}'));
    }
    const sweepActions = new Set(statements('sweep').flatMap((s) => s.actions));
    assert.deepEqual([...sweepActions].sort(), ['ec2:DescribeSecurityGroupRules', 'ec2:DescribeSecurityGroups', 'ec2:RevokeSecurityGroupIngress']);
    const create = statements('broker').filter((s) => s.actions.includes('ec2:AuthorizeSecurityGroupIngress') && s.resources.includes('${local.rule_arn}'));
    assert.ok(create[0]?.condition?.some((c) => c.variable === 'aws:RequestTag/portcullis:managed'), 'rules are created only with the managed tag');
    // ECS reads exactly the two secrets, by ARN.
    const exec = tf.data.aws_iam_policy_document.execution[0].statement.find((s: Statement) => s.actions.includes('secretsmanager:GetSecretValue'));
    assert.equal(exec.resources.length, 2);
    assert.ok(exec.resources.every((r: string) => r.startsWith('${aws_')), 'no wildcard secret');
  });

  it('no security group admits RDP (3389) at rest: the gates declare no ingress, and no ingress rule covers 3389', () => {
    const gate = tf.resource.aws_security_group.gate[0];
    assert.equal(gate.ingress, undefined, 'gate has an inline ingress block');
    assert.match(gate.tags, /local\.gate_tag/);
    for (const [name, sg] of Object.entries<any>(tf.resource.aws_security_group)) {
      for (const ing of sg[0].ingress ?? []) assert.ok(!(ing.from_port <= 3389 && ing.to_port >= 3389), `aws_security_group.${name} admits 3389`);
    }
    for (const type of ['aws_vpc_security_group_ingress_rule', 'aws_security_group_rule']) {
      for (const [name, r] of Object.entries<any>(tf.resource[type] ?? {})) {
        const rule = r[0];
        assert.doesNotMatch(String(rule.security_group_id), /aws_security_group\.gate/, `${type}.${name} adds ingress to a gate`);
        const protoAll = rule.ip_protocol === '-1';
        assert.ok(!protoAll && !(rule.from_port <= 3389 && rule.to_port >= 3389), `${type}.${name} admits 3389`);
      }
    }
  });

  it('TLS at the load balancer (TLS 1.3 policy, HTTP only redirects); /metrics is not published', () => {
    const https = tf.resource.aws_lb_listener.https[0];
    assert.equal(https.protocol, 'HTTPS');
    assert.equal(https.certificate_arn, '${var.certificate_arn}');
    assert.match(https.ssl_policy, /^ELBSecurityPolicy-TLS13-/);
    const http = tf.resource.aws_lb_listener.http_redirect[0];
    assert.equal(http.default_action[0].type, 'redirect');
    assert.equal(http.default_action[0].redirect[0].protocol, 'HTTPS');
    assert.equal(tf.resource.aws_lb.this[0].drop_invalid_header_fields, true);
    assert.equal(tf.resource.aws_lb_target_group.broker[0].health_check[0].path, '/readyz');
    assert.deepEqual(tf.resource.aws_lb_listener_rule.hide_metrics[0].condition[0].path_pattern[0].values, ['/metrics', '/metrics/*']);
  });

  it('RDS PostgreSQL: private, encrypted, TLS forced, backed up, password managed by RDS (none in the module)', () => {
    const db = tf.resource.aws_db_instance.this[0];
    assert.equal(db.engine, 'postgres');
    assert.equal(db.publicly_accessible, false);
    assert.equal(db.storage_encrypted, true);
    assert.equal(db.manage_master_user_password, true);
    assert.equal(db.password, undefined);
    assert.equal(db.deletion_protection, true);
    assert.equal(db.backup_retention_period, '${var.db_backup_retention_days}');
    assert.deepEqual(tf.resource.aws_db_parameter_group.this[0].parameter, [{ name: 'rds.force_ssl', value: '1' }]);
    assert.equal(tf.resource.aws_secretsmanager_secret.oidc_web[0].secret_string, undefined);
    assert.equal(tf.resource.aws_secretsmanager_secret_version, undefined, 'no secret value is written by Terraform');
  });

  it('ECS: replicas behind the ALB, non-root read-only containers, secrets from Secrets Manager, the tags-only sweep on a schedule', () => {
    const ecs = read(join(TF_DIR, 'ecs.tf'));
    assert.match(ecs, /user\s+=\s+"1000:1000"/);
    assert.equal((ecs.match(/readonlyRootFilesystem\s+=\s+true/g) ?? []).length, 2);
    assert.match(ecs, /command = \["sweep", "--once", "--tags-only", "--json"\]/);
    assert.match(ecs, /name = "sweep", secrets = \[\]/, 'the sweep holds no secret');
    assert.match(ecs, /valueFrom = aws_secretsmanager_secret\.oidc_web\.arn/);
    assert.match(ecs, /master_user_secret\[0\]\.secret_arn\}:password::/);
    const svc = tf.resource.aws_ecs_service.broker[0];
    assert.equal(svc.desired_count, '${var.replicas}');
    assert.equal(svc.network_configuration[0].assign_public_ip, false);
    const sched = tf.resource.aws_scheduler_schedule.sweep[0];
    assert.equal(sched.schedule_expression, '${var.sweep_schedule}');
    assert.match(sched.target[0].ecs_parameters[0].task_definition_arn, /aws_ecs_task_definition\.sweep/);
    assert.equal(tf.resource.aws_ecs_task_definition.sweep[0].task_role_arn, '${aws_iam_role.sweep.arn}');
  });

  it('terraform fmt -check passes (when a terraform binary is on PATH; none ships with Debian or npm)', (t) => {
    const terraform = which('terraform');
    if (!terraform) return t.skip('no terraform binary on PATH: HashiCorp ships it outside Debian and npm; the hcl2json checks above still ran');
    const env = { ...process.env, TF_CLI_CONFIG_FILE: '/dev/null', CHECKPOINT_DISABLE: '1' };
    const r = spawnSync(terraform, ['fmt', '-check', '-recursive', '-diff', TF_DIR], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const example = spawnSync(terraform, ['fmt', '-check', '-'], { input: read(join(TF_DIR, 'terraform.tfvars.example')), encoding: 'utf8', env });
    assert.equal(example.status, 0, `terraform.tfvars.example is not formatted:\n${example.stdout}${example.stderr}`);
  });

  it('the config template renders (terraform, offline) to a config the broker accepts, for the broker and for the sweep', (t) => {
    const terraform = which('terraform');
    if (!terraform) return t.skip('no terraform binary on PATH to render templatefile()');
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-tf-'));
    try {
      cpSync(join(TF_DIR, 'portcullis.yaml.tftpl'), join(dir, 'portcullis.yaml.tftpl'));
      const vars = {
        public_hostname: 'portcullis.example.com', vpc_cidr: '10.0.0.0/16', db_endpoint: 'db.example.internal:5432',
        oidc_issuer: 'https://login.example.com', oidc_web_client_id: 'web-id', oidc_cli_client_id: 'cli-id', oidc_groups_claim: 'groups',
        oidc_mfa_amr: ['mfa'], oidc_mfa_acr: [], admin_groups: ['portcullis-admins'], audit_reader_groups: ['auditors'], region: 'eu-west-1',
        targets: { 'acme-dc01': { connect: '10.0.1.10:3389', description: 'ACME "DC"', ports: [3389], tags: { customer: 'acme' } }, 'acme-jump': { connect: '10.0.1.20:3389', description: null, ports: [3389], tags: {} } },
        gates: { 'acme-dc01': 'sg-0aaa1111bbbb2222c', 'acme-jump': 'sg-0aaa1111bbbb2222d' },
      };
      // Outputs only: no provider, so `init` and `apply` run without any download.
      writeFileSync(join(dir, 'main.tf'), `locals { v = jsondecode(file("\${path.module}/vars.json")) }\noutput "broker" { value = templatefile("\${path.module}/portcullis.yaml.tftpl", merge(local.v, { with_web_client = true })) }\noutput "sweep" { value = templatefile("\${path.module}/portcullis.yaml.tftpl", merge(local.v, { with_web_client = false })) }\n`);
      writeFileSync(join(dir, 'vars.json'), JSON.stringify(vars));
      const env = { ...process.env, TF_CLI_CONFIG_FILE: '/dev/null', CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1' };
      const init = spawnSync(terraform, ['init', '-input=false', '-backend=false'], { cwd: dir, encoding: 'utf8', env });
      assert.equal(init.status, 0, init.stdout + init.stderr);
      const apply = spawnSync(terraform, ['apply', '-input=false', '-auto-approve', '-state', join(dir, 's.tfstate')], { cwd: dir, encoding: 'utf8', env });
      assert.equal(apply.status, 0, apply.stdout + apply.stderr);
      const out = JSON.parse(spawnSync(terraform, ['output', '-json', '-state', join(dir, 's.tfstate')], { cwd: dir, encoding: 'utf8', env }).stdout);
      const broker = parseConfig(interpolateForTest(parseYaml(out.broker.value), { OIDC_WEB_SECRET: 'x' }));
      assert.equal(broker.oidc.clients.web?.id, 'web-id');
      assert.deepEqual(broker.targets.map((x) => [x.id, x.firewall]), [
        ['acme-dc01', { kind: 'aws-security-group', region: 'eu-west-1', securityGroupId: 'sg-0aaa1111bbbb2222c' }],
        ['acme-jump', { kind: 'aws-security-group', region: 'eu-west-1', securityGroupId: 'sg-0aaa1111bbbb2222d' }],
      ]);
      assert.equal(broker.targets[0]!.description, 'ACME "DC"');
      assert.match(out.broker.value, /secret: "\$\{OIDC_WEB_SECRET\}"/, 'the secret stays a reference');
      const sweep = parseConfig(parseYaml(out.sweep.value));
      assert.equal(sweep.oidc.clients.web, undefined, 'the sweep config needs no secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every file of the module is one the checks above read', () => {
    const names = filesUnder(TF_DIR).map(rel).sort();
    assert.deepEqual(names.filter((n) => !/\.(tf|tftpl)$|terraform\.tfvars\.example$/.test(n)), []);
  });
});

/** ${NAME} as the config loader replaces it, so a rendered file can be parsed here. */
function interpolateForTest(v: unknown, env: Record<string, string>): unknown {
  if (typeof v === 'string') return v.replace(/\$\{([A-Z_]+)\}/g, (_, n: string) => env[n] ?? '');
  if (Array.isArray(v)) return v.map((x) => interpolateForTest(x, env));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateForTest(x, env)]));
  return v;
}
