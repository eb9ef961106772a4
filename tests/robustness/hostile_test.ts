// Hostile input, as a new user (or an attacker) would give it: names that
// are members of Object.prototype, JSON nested thousands deep, inputs past
// every documented bound, wrong types to the handle. Every one must be a
// clear, located usage/input error (exit 2) or a typed EventChannelError,
// never a crash, a stack trace, a stack overflow or a silent success.

import assert from "node:assert/strict";
import {
  EventChannelError,
  type EventChannelHandle,
  MemoryXen,
} from "../../mod.ts";
import { errnoName } from "../../xen/errno.ts";
import { parseTrace, TRACE_LIMITS, TraceParseError } from "../../oracle/mod.ts";
import { cli, cliWithInput, memory } from "../cli/_run.ts";

/** A stack trace line, which no refusal may print. */
const STACK = /\n\s+at /;
/** Names inherited from Object.prototype. */
const PROTO_NAMES = ["toString", "constructor", "__proto__", "hasOwnProperty"];

const HEADER =
  '{"type":"header","version":1,"backend":"memory","xen":"x","kernel":"k","abi":"fifo","vcpus":2,"recorded":"2025-01-01T00:00:00.000Z"}';
const OPEN =
  '{"type":"step","i":0,"handle":"h0","op":"open","args":{},"outcome":{"ok":null}}';

/** Asserts an exit 2 with a message matching `what` and no stack trace. */
function inputError(
  r: { code: number; stdout: string; stderr: string },
  what: RegExp,
): void {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, what);
  assert.doesNotMatch(r.stderr, STACK);
  assert.doesNotMatch(r.stderr, /TypeError|RangeError/);
}

/** A sparse file of `size` bytes (no disk used) in a fresh directory. */
async function sparseFile(size: number): Promise<string> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/huge`;
  await Deno.writeFile(path, new Uint8Array(0));
  await Deno.truncate(path, size);
  return path;
}

async function removeDir(file: string): Promise<void> {
  await Deno.remove(file.slice(0, file.lastIndexOf("/")), { recursive: true });
}

Deno.test("hostile scenarios (sim)", async (t) => {
  for (const op of PROTO_NAMES) {
    await t.step(`op "${op}"`, async () => {
      const text =
        `{"domains": [{"id": 0}],\n "steps": [{"op": "${op}", "caller": 0}]}`;
      const r = await cliWithInput(text, "sim", "-");
      inputError(
        r,
        new RegExp(`<stdin>:2:\\d+: steps\\[0\\]\\.op: unknown op '${op}'`),
      );
    });
  }
  await t.step("a step smuggled in through __proto__", async () => {
    const text =
      '{"domains":[{"id":0}],"steps":[{"__proto__":{"op":"send","caller":0,"port":1}}]}';
    const r = await cliWithInput(text, "sim", "-");
    inputError(r, /<stdin>:1:32: steps\[0\]/);
  });
  await t.step("--example constructor", async () => {
    inputError(
      await cli("sim", "--example", "constructor"),
      /Unknown example 'constructor'/,
    );
  });
  await t.step("JSON nested 10,000 deep", async () => {
    const text = `{"domains": [],\n  "steps": ${"[".repeat(10_000)}${
      "]".repeat(10_000)
    }}`;
    const r = await cliWithInput(text, "sim", "-");
    // Depth 33 (the root object, then the 32nd "[") is the first too deep.
    inputError(r, /<stdin>:2:43: JSON nested deeper than 32 levels/);
  });
  await t.step("more than 1,000 domains", async () => {
    const domains = Array.from({ length: 1001 }, (_, i) => `{"id":${i + 1}}`);
    const text = `{"domains":[${domains.join(",")}],"steps":[]}`;
    inputError(
      await cliWithInput(text, "sim", "-"),
      /<stdin>:1:12: domains: more than 1000 domains/,
    );
  });
  await t.step("a file past 64 MiB, refused before reading", async () => {
    const file = await sparseFile(64 * 1024 * 1024 + 1);
    try {
      inputError(
        await cli("sim", file),
        /larger than 67108864 bytes, the most a scenario file may be/,
      );
    } finally {
      await removeDir(file);
    }
  });
  await t.step(
    "150,000 steps: the human output does not overflow",
    async () => {
      // Math.max(...widths) put every step on the stack: RangeError past ~130k.
      const step = '{"op":"bind_ipi","caller":0}';
      const text = `{"domains":[{"id":0,"privileged":true}],"steps":[${
        Array.from({ length: 150_000 }, () => step).join(",")
      }]}`;
      const r = await cliWithInput(text, "sim", "-");
      assert.equal(r.code, 0, r.stderr.slice(0, 500));
      assert.match(r.stdout, /^150000 steps, \d+ failed$/m);
    },
  );
});

Deno.test("hostile traces (oracle)", async (t) => {
  for (const op of PROTO_NAMES) {
    await t.step(`op "${op}": located TraceParseError`, () => {
      const line = `{"type":"step","i":1,"op":"${op}","args":{}}`;
      try {
        parseTrace(`${OPEN}\n${line}\n`);
        assert.fail("parsed");
      } catch (error) {
        assert.ok(error instanceof TraceParseError, String(error));
        assert.equal(error.line, 2);
        assert.equal(error.column, line.indexOf(`"${op}"`) + 1);
        assert.match(error.message, /unknown op/);
      }
    });
  }
  await t.step("an argument named constructor or __proto__", () => {
    for (const name of ["constructor", "__proto__", "toString"]) {
      const line =
        `{"type":"step","i":1,"op":"hc.status","args":{"${name}":1,"domain":0,"port":1}}`;
      assert.throws(
        () => parseTrace(`${OPEN}\n${line}`),
        (e: unknown) =>
          e instanceof TraceParseError && e.line === 2 &&
          new RegExp(`no argument "${name}"`).test(e.message),
      );
    }
  });
  await t.step("replay of op constructor: exit 2 naming the line", async () => {
    const text = `${HEADER}\n${OPEN}\n` +
      '{"type":"step","i":1,"op":"constructor","args":{},"outcome":{"ok":null}}\n';
    inputError(
      await cliWithInput(text, "oracle", "replay", "-"),
      /stdin: line 3, column 27: unknown op "constructor"/,
    );
  });
  await t.step(
    "an outcome nested 10,000 deep: refused before JSON.parse",
    async () => {
      const deep =
        `{"type":"step","i":1,"handle":"h0","op":"reset","args":{},"outcome":{"ok":${
          "[".repeat(10_000)
        }${"]".repeat(10_000)}}}`;
      assert.throws(
        () => parseTrace(`${OPEN}\n${deep}`),
        (e: unknown) =>
          e instanceof TraceParseError && e.line === 2 &&
          e.column === deep.indexOf("[") + TRACE_LIMITS.depth - 1 &&
          /nested deeper than 32 levels/.test(e.message),
      );
      inputError(
        await cliWithInput(
          `${HEADER}\n${OPEN}\n${deep}\n`,
          "oracle",
          "replay",
          "-",
        ),
        /stdin: line 3, column \d+: JSON nested deeper than 32 levels/,
      );
    },
  );
  await t.step("oracle constructor / toString: not commands", async () => {
    for (const name of ["constructor", "toString", "__proto__"]) {
      const r = await cli("oracle", name);
      inputError(r, new RegExp(`unknown command "${name}"`));
      assert.equal(r.stdout, "");
    }
  });
  await t.step("an empty trace is not agreement", async () => {
    inputError(
      await cliWithInput(`${HEADER}\n`, "oracle", "replay", "-"),
      /stdin: trace has no steps/,
    );
    inputError(
      await cliWithInput("", "oracle", "replay", "-"),
      /stdin: trace has no steps/,
    );
  });
  await t.step("a trace past 256 MiB, refused before reading", async () => {
    const file = await sparseFile(TRACE_LIMITS.bytes + 1);
    try {
      inputError(
        await cli("oracle", "replay", file),
        /larger than 268435456 bytes, the most a trace may be/,
      );
    } finally {
      await removeDir(file);
    }
  });
});

Deno.test("hostile CLI numbers and names", async (t) => {
  await t.step("--count constructor", async () => {
    inputError(
      await memory("ping", "--count", "constructor"),
      /Invalid --count 'constructor'/,
    );
  });
  await t.step("--backend __proto__", async () => {
    inputError(
      await cli("--backend", "__proto__", "info"),
      /Invalid --backend '__proto__'/,
    );
  });
  await t.step("help toString", async () => {
    inputError(await cli("help", "toString"), /Unknown command 'toString'/);
  });
});

/** Asserts that `f` throws an EventChannelError with this op/argument/code. */
async function refuses(
  f: () => unknown,
  op: string,
  argument: string,
  code: string,
): Promise<void> {
  try {
    await f();
  } catch (error) {
    assert.ok(error instanceof EventChannelError, String(error));
    assert.equal(error.op, op);
    assert.equal(error.argument, argument);
    assert.equal(error.code, code);
    return;
  }
  assert.fail(`${op} accepted ${argument}`);
}

Deno.test("hostile handle arguments: EventChannelError, nothing changes", async (t) => {
  const xen = new MemoryXen();
  await using a = xen.open(0);
  await using b = xen.open(0);
  const offered = a.bindUnboundPort(0);
  const port: number = b.bindInterdomain(0, offered);
  // The bind left `port` pending: every refused call below must leave it so.
  const stillPending = (h: EventChannelHandle): void => {
    assert.equal(h.poll(), port);
    h.unmask(port);
    a.notify(offered);
  };
  const bad = [
    undefined,
    null,
    4,
    "abcd",
    [0, 0, 0, 0],
    {},
    new ArrayBuffer(4),
  ];
  await t.step("read: anything but a Uint8Array is EFAULT", async () => {
    for (
      const buffer of [
        ...bad,
        new Uint32Array(1),
        new DataView(new ArrayBuffer(4)),
      ]
    ) {
      await refuses(
        () => b.read(buffer as unknown as Uint8Array),
        "read",
        "buffer",
        "EFAULT",
      );
    }
    stillPending(b);
  });
  await t.step(
    "write: anything but a Uint8Array is EFAULT, nothing unmasked",
    async () => {
      assert.equal(b.poll(), port); // masked now
      for (const buffer of bad) {
        await refuses(
          () => b.write(buffer as unknown as Uint8Array),
          "write",
          "buffer",
          "EFAULT",
        );
      }
      a.notify(offered);
      assert.equal(b.poll(), undefined, "still masked: the notify coalesced");
      b.unmask(port);
      assert.equal(b.poll(), port, "the notify while masked is delivered now");
      b.unmask(port);
      a.notify(offered);
    },
  );
  await t.step("a detached buffer is EFAULT, not a silent 0", async () => {
    const memory = new ArrayBuffer(8);
    const view = new Uint8Array(memory);
    structuredClone(memory, { transfer: [memory] });
    await refuses(() => b.read(view), "read", "buffer", "EFAULT");
    await refuses(() => b.write(view), "write", "buffer", "EFAULT");
    stillPending(b);
  });
  await t.step("next/ports: options and signal are checked", async () => {
    const options = [null, 5, "x", true];
    const signals = [5, "x", {}, new AbortController()];
    for (const o of options) {
      await refuses(
        () => b.next(o as unknown as { signal?: AbortSignal }),
        "next",
        "options",
        "EINVAL",
      );
      await refuses(
        () => b.ports(o as unknown as { signal?: AbortSignal }),
        "ports",
        "options",
        "EINVAL",
      );
    }
    for (const signal of signals) {
      const o = { signal } as unknown as { signal?: AbortSignal };
      await refuses(() => b.next(o), "next", "signal", "EINVAL");
      await refuses(() => b.ports(o), "ports", "signal", "EINVAL");
    }
    stillPending(b);
  });
});

Deno.test("errno names: every errno Linux gives here has one", () => {
  // errno-base.h, 1..34: all of them.
  for (let n = 1; n <= 34; n++) {
    assert.match(errnoName(n), /^E[A-Z0-9]+$/, `errno ${n}`);
    assert.notEqual(errnoName(n), `E${n}`);
  }
  assert.equal(errnoName(21), "EISDIR");
  assert.equal(new EventChannelError("open", 21).code, "EISDIR");
  assert.equal(errnoName(110), "ETIMEDOUT");
  assert.equal(errnoName(4242), "E4242");
});
