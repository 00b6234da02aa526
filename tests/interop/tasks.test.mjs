// Interop: the official Tasks extension client (`@modelcontextprotocol/ext-tasks`) on top of the
// official `@modelcontextprotocol/client` against the real imagemcp binary. ext-tasks validates
// every CreateTaskResult and tasks/get answer with the extension's generated schemas and drives
// the polling itself; for a 2026-07-28 server it sends its task traffic through a raw dispatcher
// (the SDK's own codecs do not know the task shapes), which here is a plain fetch() with the
// routing headers the transport defines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createTaskSessionFromClient, resultFromTaskOutcome } from '@modelcontextprotocol/ext-tasks/client';

import { startServer } from './server.mjs';

const MODERN = '2026-07-28';
let server;
let url;
let key;

before(async () => {
  server = await startServer('imagemcp-tasks-');
  ({ url, key } = server);
});

after(() => server?.stop());

/** Sends one JSON-RPC request as the 2026-07-28 transport does: routing headers from the body. */
function rawDispatcher(seen) {
  let nextId = 0;
  return async (request) => {
    const params = request.params ?? {};
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${key}`,
      'mcp-protocol-version': MODERN,
      'mcp-method': request.method,
    };
    const name = params.name ?? params.taskId ?? params.uri;
    if (name !== undefined) headers['mcp-name'] = name;
    seen.push(request.method);
    const response = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: ++nextId, ...request }),
    });
    return response.json();
  };
}

async function withSession(run) {
  const client = new Client({ name: 'interop-tasks', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  }));
  const seen = [];
  const session = createTaskSessionFromClient(client, {
    endpointId: 'imagemcp-interop',
    rawDispatch: rawDispatcher(seen),
    v2RequestFraming: {
      protocolVersion: MODERN,
      clientInfo: { name: 'interop-tasks', version: '1.0.0' },
      clientCapabilities: {},
    },
  });
  try {
    await run(session, seen);
  } finally {
    await session.close();
    await client.close();
  }
}

test('ext-tasks drives a campaign task to its full result', async () => {
  await withSession(async (session, seen) => {
    const execution = await session.callTool('openai_generate_campaign_batch', {
      campaign: 'interop', template: 'email', prompt: 'a paper boat on a pond', quality: 'low',
    });
    const { outcome } = await execution.settle();
    const result = resultFromTaskOutcome(outcome);
    assert.equal(result.isError ?? false, false, JSON.stringify(result.content));
    assert.equal(result.structuredContent.items_done, 4);
    assert.equal(result.content.filter((c) => c.type === 'resource_link').length, 4);
    assert.ok(seen.includes('tasks/get'), `the result came through polling: ${seen}`);
  });
});

test('ext-tasks gets a long generation as a task and a short one at once', async () => {
  await withSession(async (session, seen) => {
    const long = await session.callTool('openai_generate_image', { prompt: 'four lanterns', n: 4, quality: 'high' });
    const result = resultFromTaskOutcome((await long.settle()).outcome);
    assert.equal(result.structuredContent.images.length, 4);
    assert.ok(result.content.some((c) => c.type === 'image' && c.data.length > 100), 'previews inline');
    const polls = seen.filter((m) => m === 'tasks/get').length;
    assert.ok(polls >= 1);
    const short = await session.callTool('openai_generate_image', { prompt: 'one lantern' });
    const quick = resultFromTaskOutcome((await short.settle()).outcome);
    assert.equal(quick.structuredContent.images.length, 1);
    assert.equal(seen.filter((m) => m === 'tasks/get').length, polls, 'no task for a short call');
  });
});

test('ext-tasks cancels a campaign task through tasks/cancel', async () => {
  await withSession(async (session, seen) => {
    const execution = await session.callTool('openai_generate_campaign_batch', {
      campaign: 'stopped', template: 'presentation', slides: 10, prompt: 'a quiet harbour', quality: 'low',
    });
    assert.equal(execution.kind, 'task');
    await execution.cancel();
    assert.ok(seen.includes('tasks/cancel'));
    const { outcome } = await execution.settle();
    // Cancellation is cooperative: the consumer may finish first. Either way the task and the job
    // agree, and a cancelled task generated fewer than its ten slides.
    const jobId = execution.handle.taskId ?? execution.serializeReference().taskId;
    const response = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream',
        authorization: `Bearer ${key}`, 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call',
        'mcp-name': 'openai_get_job',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: {
        name: 'openai_get_job', arguments: { job_id: jobId },
        _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} },
      } }),
    });
    const job = (await response.json()).result.structuredContent;
    if (outcome.status === 'cancelled') {
      assert.equal(job.status, 'cancelled');
      assert.ok(job.items_done < 10, `a cancelled job stopped early: ${job.items_done}`);
    } else {
      assert.equal(outcome.status, 'completed');
      assert.equal(job.items_done, 10);
    }
  });
});
