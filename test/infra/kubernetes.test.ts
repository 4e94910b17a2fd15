// infra/kubernetes: every manifest validated against the Kubernetes API schemas (kubernetes-models), then what a scanner
// asks: two replicas, probes, limits, non-root with a read-only root filesystem, secrets by reference, a PDB, a NetworkPolicy.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as core from 'kubernetes-models/v1';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { filesUnder, INFRA, read, rel } from './helpers.ts';

const MODELS: Record<string, Record<string, new (o: any) => { validate(): void }>> = {
  v1: core as never,
  'apps/v1': apps as never,
  'batch/v1': batch as never,
  'policy/v1': policy as never,
  'networking.k8s.io/v1': networking as never,
};

type Obj = Record<string, any>;

describe('infra/kubernetes', () => {
  const dir = join(INFRA, 'kubernetes');
  const objects: { file: string; obj: Obj }[] = [];
  const byKind = (kind: string) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
  before(() => {
    for (const f of filesUnder(dir, (n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')) {
      for (const doc of parseAllDocuments(read(f))) {
        assert.deepEqual(doc.errors, [], `${rel(f)} is not valid YAML`);
        objects.push({ file: rel(f), obj: doc.toJS() as Obj });
      }
    }
  });

  it('every manifest is valid against the API schema of its kind, and the kustomization lists each file', () => {
    assert.ok(objects.length >= 8);
    for (const { file, obj } of objects) {
      const Model = MODELS[obj.apiVersion]?.[obj.kind];
      assert.ok(Model, `${file}: no schema for ${obj.apiVersion} ${obj.kind}`);
      assert.doesNotThrow(() => new Model(obj).validate(), `${file}: ${obj.kind} ${obj.metadata?.name}`);
      assert.equal(obj.metadata.namespace ?? (obj.kind === 'Namespace' ? undefined : 'missing'), obj.kind === 'Namespace' ? undefined : 'portcullis', `${file}: namespace`);
    }
    const k = parseYaml(read(join(dir, 'kustomization.yaml')));
    assert.deepEqual([...k.resources].sort(), [...new Set(objects.map((o) => o.file.replace('infra/kubernetes/', '')))].sort());
  });

  it('the validator rejects a broken manifest (the check can fail)', () => {
    const d = structuredClone(byKind('Deployment')[0]!);
    d.spec.replicas = 'two';
    assert.throws(() => new apps.Deployment(d).validate(), /replicas must be integer/);
  });

  it('Deployment: 2 replicas, rolling without losing capacity, /readyz and /healthz probes, requests and limits', () => {
    const [d] = byKind('Deployment');
    assert.equal(d.spec.replicas, 2);
    assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
    const [c] = d.spec.template.spec.containers;
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    for (const k of ['cpu', 'memory']) {
      assert.ok(c.resources.requests[k], `requests.${k}`);
      assert.ok(c.resources.limits[k], `limits.${k}`);
    }
  });

  it('every pod runs non-root with a read-only root filesystem, no privilege escalation, all capabilities dropped', () => {
    const pods = [...byKind('Deployment'), ...byKind('Job')].map((w) => w.spec.template.spec);
    assert.ok(pods.length >= 2);
    for (const pod of pods) {
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.ok(pod.securityContext.runAsUser > 0);
      assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
      assert.equal(pod.automountServiceAccountToken, false);
      for (const c of pod.containers) {
        assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
        assert.equal(c.securityContext.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`);
        assert.equal(c.securityContext.runAsNonRoot, true, `${c.name}: runAsNonRoot`);
        assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
        assert.equal(c.securityContext.privileged, undefined);
        assert.ok(c.resources?.limits?.memory, `${c.name}: memory limit`);
        // Secrets by reference only: no literal value for a secret-looking variable.
        for (const e of c.env ?? []) if (/SECRET|PASSWORD|TOKEN/.test(e.name)) assert.ok(e.valueFrom?.secretKeyRef && e.value === undefined, `${c.name}: ${e.name} by secretKeyRef`);
      }
    }
  });

  it('a PodDisruptionBudget keeps one replica, a Service selects the broker, a NetworkPolicy limits both directions', () => {
    const [pdb] = byKind('PodDisruptionBudget');
    const [d] = byKind('Deployment');
    assert.equal(pdb.spec.minAvailable, 1);
    assert.deepEqual(pdb.spec.selector.matchLabels, d.spec.selector.matchLabels);
    const [svc] = byKind('Service');
    assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
    assert.equal(svc.spec.type, 'ClusterIP');
    const [np] = byKind('NetworkPolicy');
    assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
    assert.ok(np.spec.ingress.every((r: Obj) => r.from?.length > 0), 'ingress only from named peers');
    assert.equal(byKind('Secret').length, 0, 'no Secret object (and so no secret value) in the repository');
  });

  it("the ConfigMap's portcullis.yaml is a config the broker accepts", () => {
    const [cm] = byKind('ConfigMap');
    const raw = cm.data['portcullis.yaml'].replace('${OIDC_WEB_SECRET}', 'from-the-secret');
    const config = parseConfig(parseYaml(raw));
    assert.equal(config.server.listen, '0.0.0.0:8080');
    assert.match(config.store.url, /^postgres:\/\/portcullis@[^:]+:5432\//, 'no password in the URL');
  });
});
