// Interop: the official TypeScript MCP SDKs (v1 `@modelcontextprotocol/sdk`, handshake era; v2
// `@modelcontextprotocol/client`, 2026-07-28 with auto negotiation) against the real imagemcp
// binary. Both validate each tool's structuredContent against its outputSchema with Ajv, so a
// schema a strict validator refuses fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';

import { startServer } from './server.mjs';

let server;
let url;
let key;

before(async () => {
  server = await startServer('imagemcp-interop-');
  ({ url, key } = server);
});

after(() => server?.stop());

async function exercise(client, callWithProgress) {
  const { tools } = await client.listTools();
  const names = new Set(tools.map((t) => t.name));
  for (const name of [
    'openai_delete_image', 'openai_edit_image', 'openai_generate_image',
    'openai_get_image', 'openai_list_conversations', 'openai_list_images',
  ]) {
    assert.ok(names.has(name), `${name} is listed`);
  }
  for (const tool of tools) {
    assert.equal(tool.inputSchema.type, 'object', tool.name);
  }
  const progress = [];
  const made = await callWithProgress(
    // `fresh`: both SDKs make the same request, and the second must render (and report progress)
    // rather than be answered from the generation cache.
    { name: 'openai_generate_image', arguments: { prompt: 'a crimson kite over a teal sea', n: 2, size: '1024x1536', fresh: true } },
    { onprogress: (p) => progress.push(p) },
  );
  assert.equal(made.isError ?? false, false, JSON.stringify(made.content));
  assert.equal(made.structuredContent.images.length, 2);
  assert.equal(made.structuredContent.images[0].height, 1536);
  assert.ok(progress.length >= 2, `progress notifications: ${progress.length}`);
  const link = made.content.find((c) => c.type === 'resource_link');
  const read = await client.readResource({ uri: link.uri });
  assert.equal(Buffer.from(read.contents[0].blob, 'base64').subarray(1, 4).toString(), 'PNG');
  const listed = await client.callTool({ name: 'openai_list_images', arguments: { limit: 1 } });
  assert.equal(listed.structuredContent.images.length, 1);
  assert.ok(listed.structuredContent.next_cursor);
  const bad = await client.callTool({ name: 'openai_generate_image', arguments: { prompt: 'x', size: 'huge' } });
  assert.equal(bad.isError, true);
  assert.match(bad.content[0].text, /size/);
}

test('TypeScript SDK v1 (initialize handshake)', async () => {
  const client = new ClientV1({ name: 'interop-v1', version: '1.0.0' });
  await client.connect(new TransportV1(new URL(url + '/mcp'), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  try {
    // v1's callTool takes (params, resultSchema, options).
    await exercise(client, (params, options) => client.callTool(params, undefined, options));
  } finally {
    await client.close();
  }
});

test('TypeScript client v2 (auto negotiation to 2026-07-28)', async () => {
  const client = new ClientV2({ name: 'interop-v2', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(new TransportV2(new URL(url + '/mcp'), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  try {
    // v2's callTool takes (params, options).
    await exercise(client, (params, options) => client.callTool(params, options));
  } finally {
    await client.close();
  }
});
