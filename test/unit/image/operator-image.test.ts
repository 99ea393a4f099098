/**
 * The operator image's configuration, read from the Dockerfile's final stage
 * (e2e/node/operator-image.ts), and the umoci flags that set it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { finalStageConfig, umociConfigFlags } from '../../../e2e/node/operator-image.ts';
import { REPOSITORY_ROOT } from '../../../e2e/image/bundle.ts';

describe('the operator image configuration', () => {
  it("is the repository Dockerfile's final stage: Node directly, uid 65532, /app, both ports", () => {
    const config = finalStageConfig(readFileSync(`${REPOSITORY_ROOT}Dockerfile`, 'utf8'));
    assert.deepEqual(config, {
      env: ['NODE_ENV=production'],
      workingDir: '/app',
      user: '65532:65532',
      exposedPorts: ['8080/tcp', '8081/tcp'],
      entrypoint: ['/nodejs/bin/node', 'bin/ssj-operator.mjs'],
      cmd: [],
    });
  });

  it('reads only the last stage: the builder stage and its instructions are not the image', () => {
    const config = finalStageConfig(
      [
        'FROM builder AS deps',
        'WORKDIR /build',
        'ENV BUILDING=1',
        'RUN npm ci',
        '# a comment',
        'FROM runtime',
        'USER 1000',
        'EXPOSE 9090/udp',
        'CMD ["--flag"]',
      ].join('\n'),
    );
    assert.deepEqual(config, {
      env: [],
      workingDir: undefined,
      user: '1000',
      exposedPorts: ['9090/udp'],
      entrypoint: [],
      cmd: ['--flag'],
    });
  });

  it('refuses what it would get wrong: a shell-form ENTRYPOINT, a RUN in the final stage, no FROM', () => {
    assert.throws(() => finalStageConfig('FROM x\nENTRYPOINT node src/main.ts'), /exec form/);
    assert.throws(() => finalStageConfig('FROM x\nRUN rm -rf /tmp'), /does not carry out: RUN/);
    assert.throws(() => finalStageConfig('FROM x\nENV A=1 B=2'), /one KEY=value/);
    assert.throws(() => finalStageConfig('ENV A=1'), /no FROM/);
  });

  it('becomes umoci flags, one per value, in order', () => {
    assert.deepEqual(
      umociConfigFlags({
        env: ['A=1'],
        workingDir: '/app',
        user: '65532:65532',
        exposedPorts: ['8080/tcp'],
        entrypoint: ['/nodejs/bin/node', 'src/main.ts'],
        cmd: [],
      }).slice(6),
      [
        '--config.env',
        'A=1',
        '--config.workingdir',
        '/app',
        '--config.user',
        '65532:65532',
        '--config.exposedports',
        '8080/tcp',
        '--config.entrypoint',
        '/nodejs/bin/node',
        '--config.entrypoint',
        'src/main.ts',
      ],
    );
  });
});
