// Sign-in return targets stay on this site: no protocol-relative, backslash or whitespace tricks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localPath } from '../../src/http/web-auth.ts';

test('returnTo accepts local paths and turns anything that could leave the site into /', () => {
  assert.equal(localPath('/'), '/');
  assert.equal(localPath('/?resume=1'), '/?resume=1');
  assert.equal(localPath('/api/v1/grants?x=1#y'), '/api/v1/grants?x=1#y');
  for (const bad of ['//evil.example', '/\\evil.example', '/\t/evil.example', '/\n/evil.example', '/ /evil.example', 'https://evil.example', 'evil', '', undefined, 42, `/${'a'.repeat(2000)}`]) {
    assert.equal(localPath(bad), '/', JSON.stringify(bad));
  }
});
