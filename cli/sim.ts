/**
 * `evtchn sim`: run a scenario (domains and a script of hypervisor
 * operations) on the in-memory Xen model, print each step's outcome and then
 * every domain's channel table in the style of `xl debug-keys e`.
 *
 * @module
 */

import { readBoundedInput } from "./_input.ts";
import { type ChannelStatus, EventChannelError, virqName } from "../mod.ts";
import {
  checkInvariants,
  defaultDom0Pirqs,
  type Domain,
  FifoAbi,
  Hypervisor,
  LinuxGuest,
} from "../model.ts";
import {
  noMorePositionals,
  optionalString,
  parse,
  UsageError,
} from "./_args.ts";
import {
  type JsonLocation,
  JsonSyntaxError,
  MAX_JSON_DEPTH,
  parseLocatedJson,
} from "./_json.ts";
import { onInterrupt, STOP_SIGNALS } from "./_events.ts";
import { macrotask, Pacer } from "../_pace.ts";
import {
  errorMessage,
  EXIT_FAILURE,
  EXIT_OK,
  Output,
  padStart,
  reportError,
} from "./_output.ts";
import {
  literalOperand,
  type Operand,
  OPS,
  type Scenario,
  SCENARIO_LIMITS,
  ScenarioError,
  type ScenarioStep,
  validateScenario,
} from "./_scenario.ts";
import twoDomains from "./examples/two_domains.json" with { type: "json" };
import teardown from "./examples/teardown.json" with { type: "json" };
import linuxDom0 from "./examples/linux_dom0.json" with { type: "json" };
import pirq from "./examples/pirq.json" with { type: "json" };

/** Built-in scenarios, by name (their files are in `cli/examples/`). */
export const EXAMPLES: Record<string, unknown> = {
  "two-domains": twoDomains,
  "teardown": teardown,
  "linux-dom0": linuxDom0,
  "pirq": pirq,
};

const USAGE = `Usage: evtchn sim FILE|- [--strict] [--json]
       evtchn sim --example NAME [--strict] [--json]
       evtchn sim --list-examples [--json]`;

/** Help text of `evtchn sim`. */
export const help: string =
  `evtchn sim: run a scenario on the in-memory Xen 4.17 model

${USAGE}

Reads the scenario from FILE ('-': standard input) or a built-in example.
Creates the scenario's domains, runs its steps in order and prints each
step's outcome (its result, or the errno Xen gives), then, for each domain
still alive, its channel table as 'xl debug-keys e' prints it:

    port [p/m/s]: s=STATE n=VCPU x=XEN  d=DOM p=PORT | v=VIRQ | p=PIRQ  NAME

p/m/s are the pending and masked bits and the 2-level selector bit (under
FIFO: B when busy, then the link or -); s= is Xen's internal state number
(1 reserved, 2 unbound, 3 interdomain, 4 pirq, 5 virq, 6 ipi), followed here
by its name. The model's invariants are checked at the end. A failing step
does not stop the run.

OPTIONS:
  --example NAME     Run a built-in scenario (${
    Object.keys(EXAMPLES).join(", ")
  })
  --list-examples    List the built-in scenarios
  --strict           Exit 1 when a step failed or an invariant broke
  --json             One JSON document with "version": 1
  -h, --help         Show this help

EXIT: 0, or 1 with --strict when a step failed; 2 for a bad scenario file
(the message gives the line, column and path of the mistake); 130/143 when
SIGINT/SIGTERM stopped it (the steps run so far and the tables are printed).

LIMITS: a file of at most ${
    SCENARIO_LIMITS.bytes / 1024 / 1024
  } MiB, ${SCENARIO_LIMITS.steps} steps, ${SCENARIO_LIMITS.domains} domains, JSON nested at most
${MAX_JSON_DEPTH} levels deep; beyond them, exit 2.

SCENARIO FORMAT (JSON):
  {
    "name": "two-domains",                    optional
    "description": "what it shows",           optional
    "domains": [                              created first, in order
      {"id": 0, "privileged": true, "vcpus": 2},
      {"id": 1, "maxEvtchnPort": 1023, "linux": false}
    ],
    "steps": [
      {"op": "alloc_unbound", "caller": 1, "dom": 1, "remote_dom": 0, "as": "p1"},
      {"op": "bind_interdomain", "caller": 0, "remote_dom": 1,
       "remote_port": "$p1", "as": "p0"},
      {"op": "send", "caller": 0, "port": "$p0"},
      {"op": "bind_virq", "caller": 0, "virq": "TIMER", "expect": "EEXIST"}
    ]
  }

  Domain keys: id (required), privileged, vcpus, maxEvtchnPort, nrPirqs,
  paused, target, linux (boot a modelled Linux guest, which masks every port
  and takes events as they are unmasked), bootPorts (with linux: bind the
  kernel's own VIRQ_TIMER and IPIs, default true), eventAbi (with linux:
  "fifo", the default, or "2l").
  Step keys: op; caller (the calling domain, for hypercalls); the op's
  fields; "as" names the port a step returns, and later steps use it as
  "$name"; "expect" is "ok" or an errno name (then that outcome is a
  success); "comment". Domain fields take "DOMID_SELF"; virq fields take
  names such as "DOM_EXC" or "VIRQ_DOM_EXC". Out-of-range numbers are passed
  to Xen, which refuses them with EINVAL. The full reference, and the
  examples' files, are in cli/examples/ (README.md).

OPERATIONS:
${
    Object.entries(OPS).map(([name, spec]) =>
      `  ${name.padEnd(17)} ${
        [
          ...(spec.by === "caller" ? ["caller"] : []),
          ...Object.entries(spec.fields).map(([k, f]) =>
            f.default === undefined ? k : `[${k}]`
          ),
        ].join(" ")
      }\n  ${"".padEnd(17)} ${spec.doc}`
    ).join("\n")
  }

EXAMPLES:
  evtchn sim --example two-domains
  evtchn sim --example teardown --json
  evtchn sim my_scenario.json --strict`;

/** ECS_* state names by number (xen/include/xen/sched.h). */
const STATE_NAMES = [
  "free",
  "reserved",
  "unbound",
  "interdomain",
  "pirq",
  "virq",
  "ipi",
];

interface StepOutcome {
  index: number;
  op: string;
  by: string;
  args: Record<string, number | boolean | string>;
  refs: Record<string, string>;
  outcome: "ok" | "error" | "skipped";
  result?: number | ChannelStatus;
  as?: string;
  error?: { op: string; code: string; errno: number; message: string };
  skipped?: string;
  expect?: string;
  failed: boolean;
}

interface PortRow {
  port: number;
  state: string;
  ecs: number;
  vcpu: number;
  pending: boolean;
  masked: boolean;
  selector: boolean | null;
  fifo?: { linked: boolean; busy: boolean; link: number; priority: number };
  xen: boolean;
  remoteDomain?: number;
  remotePort?: number;
  virq?: number;
  virqName?: string;
  pirq?: number;
}

/** Runs a scenario's steps on a fresh model. */
class Runner {
  readonly xen: Hypervisor = new Hypervisor();
  readonly #names = new Map<string, number | undefined>();

  createDomain(fields: Record<string, number | boolean | string>): void {
    const n = (key: string): number | undefined =>
      typeof fields[key] === "number" ? fields[key] as number : undefined;
    const b = (key: string): boolean | undefined =>
      typeof fields[key] === "boolean" ? fields[key] as boolean : undefined;
    const abi = fields.eventAbi === "2l" ? "2l" : "fifo";
    // A dom0 running Linux binds MSI PIRQs from the top of its PIRQ space,
    // as large as the reference host's unless the scenario says otherwise.
    const kernelPirqs =
      b("linux") && b("privileged") && b("bootPorts") !== false
        ? defaultDom0Pirqs(n("vcpus") ?? 1)
        : undefined;
    const domain = this.xen.createDomain({
      domain: n("id")!,
      privileged: b("privileged"),
      vcpus: n("vcpus"),
      maxEvtchnPort: n("maxEvtchnPort"),
      nrPirqs: n("nrPirqs") ?? kernelPirqs,
      paused: b("paused"),
      target: n("target"),
    });
    if (b("linux")) {
      new LinuxGuest(this.xen, domain.id, {
        bootPorts: b("bootPorts"),
        eventAbi: abi,
      });
    }
  }

  step(step: ScenarioStep, index: number): StepOutcome {
    const spec = OPS[step.op];
    const keys = [
      ...(spec.by === "caller" ? ["caller"] : []),
      ...Object.keys(spec.fields),
    ];
    const args: Record<string, number | boolean | string> = {};
    const refs: Record<string, string> = {};
    let skipped: string | undefined;
    for (const key of keys) {
      const value = step[key] as Operand | boolean | undefined;
      const field = key === "caller" ? undefined : spec.fields[key];
      if (value === undefined) {
        if (field?.default !== undefined && step.op !== "create_domain") {
          args[key] = field.default;
        }
        continue;
      }
      if (typeof value === "boolean" || field?.kind === "abi") {
        args[key] = value;
      } else if (typeof value === "string" && value.startsWith("$")) {
        refs[key] = value;
        const resolved = this.#names.get(value.slice(1));
        if (resolved === undefined) {
          skipped ??= `${value} has no value (the step that names it failed)`;
        } else {
          args[key] = resolved;
        }
      } else {
        args[key] = literalOperand(value);
      }
    }
    const by = spec.by === "caller" ? `d${args.caller ?? "?"}` : spec.by;
    const base = {
      index,
      op: step.op,
      by,
      args,
      refs,
      expect: step.expect,
    };
    if (skipped !== undefined) {
      if (step.as !== undefined) this.#names.set(step.as, undefined);
      return { ...base, outcome: "skipped", skipped, failed: true };
    }
    try {
      const result = this.#call(step.op, args) ?? undefined;
      if (step.as !== undefined) {
        this.#names.set(step.as, result as number);
      }
      return {
        ...base,
        outcome: "ok",
        result,
        as: step.as,
        failed: step.expect !== undefined && step.expect !== "ok",
      };
    } catch (error) {
      if (!(error instanceof EventChannelError)) throw error;
      if (step.as !== undefined) this.#names.set(step.as, undefined);
      return {
        ...base,
        outcome: "error",
        error: {
          op: error.op,
          code: error.code,
          errno: error.errno,
          message: errorMessage(error),
        },
        failed: step.expect !== error.code,
      };
    }
  }

  #call(
    op: string,
    a: Record<string, number | boolean | string>,
  ): number | ChannelStatus | void {
    const xen = this.xen;
    const n = (key: string): number => a[key] as number;
    switch (op) {
      case "alloc_unbound":
        return xen.allocUnbound(n("caller"), n("dom"), n("remote_dom"));
      case "bind_interdomain":
        return xen.bindInterdomain(
          n("caller"),
          n("remote_dom"),
          n("remote_port"),
        );
      case "bind_virq":
        return xen.bindVirq(n("caller"), n("virq"), n("vcpu"));
      case "bind_ipi":
        return xen.bindIpi(n("caller"), n("vcpu"));
      case "bind_pirq":
        return xen.bindPirq(n("caller"), n("pirq"), n("flags"));
      case "close":
        return xen.close(n("caller"), n("port"));
      case "send":
        return xen.send(n("caller"), n("port"));
      case "status":
        return xen.status(n("caller"), n("dom"), n("port"));
      case "bind_vcpu":
        return xen.bindVcpu(n("caller"), n("port"), n("vcpu"));
      case "unmask":
        return xen.unmask(n("caller"), n("port"));
      case "set_priority":
        return xen.setPriority(n("caller"), n("port"), n("priority"));
      case "reset":
        return xen.reset(n("caller"), n("dom"));
      case "raise_virq":
        return xen.raiseVirq(n("dom"), n("virq"), n("vcpu"));
      case "assert_pirq":
        return xen.assertPirq(n("dom"), n("pirq"));
      case "grant_pirq":
        return xen.grantPirq(n("dom"), n("pirq"));
      case "set_virq_handler":
        return xen.setGlobalVirqHandler(n("virq"), n("dom"));
      case "set_paused":
        return xen.setPaused(n("dom"), a.paused as boolean);
      case "create_domain":
        return this.createDomain(a);
      case "destroy_domain":
        return xen.destroyDomain(n("dom"));
      default:
        throw new Error(`no such op '${op}'`);
    }
  }
}

function portRows(d: Domain): PortRow[] {
  const rows: PortRow[] = [];
  for (let port = 1; d.isValid(port); port++) {
    const ecs = d.state[port];
    if (ecs === 0) continue;
    const vcpu = d.notifyVcpu[port];
    const row: PortRow = {
      port,
      state: STATE_NAMES[ecs] ?? `state ${ecs}`,
      ecs,
      vcpu,
      pending: d.abi.isPending(port),
      masked: d.abi.isMasked(port),
      selector: d.abi.name === "2l"
        ? d.sharedInfo.selectorBit(vcpu, port >>> 6)
        : null,
      xen: d.xenConsumer[port] !== 0,
    };
    if (d.abi instanceof FifoAbi) {
      const word = d.abi.word(port);
      if (word !== undefined) {
        row.fifo = {
          linked: (word & (1 << FIFO_LINKED)) !== 0,
          busy: (word & (1 << FIFO_BUSY)) !== 0,
          link: word & FIFO_LINK_MASK,
          priority: d.abi.priority[port],
        };
      }
    }
    switch (row.state) {
      case "unbound":
        row.remoteDomain = d.remoteDomain[port];
        break;
      case "interdomain":
        row.remoteDomain = d.remoteDomain[port];
        row.remotePort = d.remotePort[port];
        break;
      case "virq":
        row.virq = d.irq[port];
        row.virqName = virqName(d.irq[port]);
        break;
      case "pirq":
        row.pirq = d.irq[port];
        break;
    }
    rows.push(row);
  }
  return rows;
}

/** Event word bits and link field (public event_channel.h). */
const FIFO_LINKED = 29;
const FIFO_BUSY = 28;
const FIFO_LINK_MASK = 0x1ffff;

function bit(value: boolean): string {
  return value ? "1" : "0";
}

/** Xen's `evtchn_port_print_state`: the selector bit, or FIFO's B and link. */
function printState(row: PortRow): string {
  if (row.selector !== null) return bit(row.selector);
  const f = row.fifo;
  if (f === undefined) return "?     ";
  return `${f.busy ? "B" : " "} ${
    f.linked ? String(f.link).padEnd(4) : "-   "
  }`;
}

/**
 * The largest `f(item)`, or 0 for none. Not `Math.max(...items.map(f))`:
 * spreading passes every item as an argument on the stack, which overflows
 * beyond ~10⁵ items (a long scenario's steps).
 */
function maxOf<T>(items: readonly T[], f: (item: T) => number): number {
  let max = 0;
  for (const item of items) max = Math.max(max, f(item));
  return max;
}

function tableLines(rows: PortRow[]): string[] {
  const lines = rows.map((row) => {
    let line = `    ${padStart(row.port, 4)} [${bit(row.pending)}/${
      bit(row.masked)
    }/${printState(row)}]: s=${row.ecs} n=${row.vcpu} x=${row.xen ? 1 : 0}`;
    let name = row.state;
    if (row.remotePort !== undefined) {
      line += ` d=${row.remoteDomain} p=${row.remotePort}`;
    } else if (row.remoteDomain !== undefined) {
      line += ` d=${row.remoteDomain}`;
    } else if (row.virq !== undefined) {
      line += ` v=${row.virq}`;
      name += ` ${row.virqName}`;
    } else if (row.pirq !== undefined) {
      line += ` p=${row.pirq}`;
    }
    return [line, name];
  });
  const width = maxOf(lines, ([line]) => line.length);
  return lines.map(([line, name]) => `${line.padEnd(width)}  ${name}`);
}

function describeResult(outcome: StepOutcome): string {
  const result = outcome.result;
  if (typeof result === "number") {
    return `port ${result}${
      outcome.as === undefined ? "" : ` → $${outcome.as}`
    }`;
  }
  if (result === undefined) return "ok";
  const { status, ...rest } = result;
  return [
    status,
    ...Object.entries(rest).map(([k, v]) => `${k}=${v}`),
  ].join(" ");
}

function describeArgs(outcome: StepOutcome): string {
  return Object.entries(outcome.args)
    .filter(([key]) => key !== "caller")
    .map(([key, value]) => {
      const ref = outcome.refs[key];
      return ref === undefined ? `${key}=${value}` : `${key}=${ref}(${value})`;
    })
    .concat(
      Object.entries(outcome.refs)
        .filter(([key]) => !(key in outcome.args))
        .map(([key, ref]) => `${key}=${ref}`),
    )
    .join(" ");
}

async function loadScenario(
  source: { file: string } | { example: string },
): Promise<{ scenario: Scenario; locate?: (path: string) => JsonLocation }> {
  if ("example" in source) {
    // Own properties only: "--example constructor" is not an example.
    const value = Object.hasOwn(EXAMPLES, source.example)
      ? EXAMPLES[source.example]
      : undefined;
    if (value === undefined) {
      throw new UsageError(
        `Unknown example '${source.example}': expected ${
          Object.keys(EXAMPLES).join(", ")
        }`,
        USAGE,
      );
    }
    return { scenario: validateScenario(value) };
  }
  const limit = SCENARIO_LIMITS.bytes;
  const tooLarge = (): never => {
    throw new ScenarioError(
      "",
      `larger than ${limit} bytes, the most a scenario file may be`,
    );
  };
  const bytes = await readBoundedInput(source.file, limit);
  if (bytes === undefined) tooLarge();
  const text = new TextDecoder().decode(bytes);
  const parsed = parseLocatedJson(text);
  return {
    scenario: validateScenario(parsed.value, parsed.locate),
    locate: parsed.locate,
  };
}

/**
 * Runs `evtchn sim`.
 *
 * @param args The arguments after `sim`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  let file: string | undefined;
  try {
    const { values, positionals, global } = parse(args, {
      example: { type: "string" },
      "list-examples": { type: "boolean" },
      strict: { type: "boolean" },
    }, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    if (global.backend === "linux") {
      throw new UsageError(
        "sim runs on the in-memory model only; it takes no --backend linux",
        USAGE,
      );
    }
    const out = new Output(global.json);
    if (values["list-examples"] === true) {
      noMorePositionals(positionals, USAGE);
      listExamples(out);
      return EXIT_OK;
    }
    const example = optionalString(values.example);
    [file] = positionals;
    noMorePositionals(positionals.slice(1), USAGE);
    if ((example === undefined) === (file === undefined)) {
      throw new UsageError(
        "Give a scenario FILE or --example NAME (one of them)",
        USAGE,
      );
    }
    const { scenario, locate } = await loadScenario(
      example === undefined ? { file: file! } : { example },
    );
    const name = scenario.name ?? example ?? file!;
    const runner = new Runner();
    scenario.domains.forEach((domain, i) => {
      try {
        runner.createDomain(
          domain as unknown as Record<string, number | boolean | string>,
        );
      } catch (error) {
        if (!(error instanceof EventChannelError)) throw error;
        const path = `domains[${i}]${error.argument === "domain" ? ".id" : ""}`;
        throw new ScenarioError(path, errorMessage(error), locate?.(path));
      }
    });
    using interrupt = onInterrupt(STOP_SIGNALS);
    const total = scenario.steps.length;
    if (total >= 10_000) out.note(`sim: running ${total} steps`);
    // Steps run synchronously on the model: yield now and then so that
    // SIGINT/SIGTERM can stop a long scenario (what ran is printed).
    const pacer = new Pacer();
    const outcomes: StepOutcome[] = [];
    for (const [i, step] of scenario.steps.entries()) {
      if (pacer.due()) await macrotask();
      if (interrupt.signal.aborted) break;
      outcomes.push(runner.step(step, i + 1));
    }
    const stopped = interrupt.exitCode;
    if (stopped !== undefined) {
      out.warn(`interrupted after ${outcomes.length} of ${total} steps`);
    }
    let failed = 0;
    for (const o of outcomes) if (o.failed) failed++;
    const invariants = checkInvariants(runner.xen);
    const domains = runner.xen.domainIds.map((id) => {
      const d = runner.xen.domain(id)!;
      return {
        id,
        privileged: d.privileged,
        vcpus: d.vcpus,
        abi: d.abi.name,
        ports: portRows(d),
      };
    });
    if (out.json) {
      out.document({
        scenario: { name, description: scenario.description ?? null },
        ...(stopped === undefined ? {} : { interrupted: true, total }),
        steps: outcomes,
        failed,
        domains,
        invariants,
      });
    } else {
      printHuman(out, name, scenario, outcomes, domains, invariants);
    }
    if (stopped !== undefined) return stopped;
    const strict = values.strict === true;
    return strict && (failed > 0 || invariants.length > 0)
      ? EXIT_FAILURE
      : EXIT_OK;
  } catch (error) {
    const source = file === "-" ? "<stdin>" : file ?? "scenario";
    const hint = "See 'evtchn sim --help' for the scenario format.";
    if (error instanceof JsonSyntaxError) {
      const { line, column } = error.location;
      return reportError(
        new UsageError(`${source}:${line}:${column}: ${error.message}`, hint),
      );
    }
    if (error instanceof ScenarioError) {
      const where = error.location === undefined
        ? source
        : `${source}:${error.location.line}:${error.location.column}`;
      const path = error.path === "" ? "" : ` ${error.path}:`;
      return reportError(
        new UsageError(`${where}:${path} ${error.message}`, hint),
      );
    }
    return reportError(error);
  }
}

function listExamples(out: Output): void {
  const list = Object.entries(EXAMPLES).map(([name, value]) => {
    const s = value as Scenario;
    return {
      name,
      description: s.description ?? "",
      domains: s.domains.length,
      steps: s.steps.length,
    };
  });
  if (out.json) {
    out.document({ examples: list });
    return;
  }
  const width = Math.max(...list.map((e) => e.name.length));
  for (const e of list) {
    out.line(
      `${out.out.paint("bold", e.name.padEnd(width))}  ${e.description}`,
    );
  }
}

function printHuman(
  out: Output,
  name: string,
  scenario: Scenario,
  outcomes: StepOutcome[],
  domains: { id: number; ports: PortRow[] }[],
  invariants: string[],
): void {
  const p = out.out;
  out.line(
    `${p.paint("bold", `scenario ${name}`)}${
      scenario.description === undefined ? "" : `: ${scenario.description}`
    }`,
  );
  out.line(
    `domains: ${
      scenario.domains.map((d) =>
        `d${d.id}${d.privileged ? " (privileged)" : ""}`
      ).join(", ")
    }`,
  );
  out.line();
  const calls = outcomes.map((o) => `${o.op} ${describeArgs(o)}`.trimEnd());
  const width = maxOf(calls, (c) => c.length);
  const byWidth = Math.max(2, maxOf(outcomes, (o) => o.by.length));
  const indexWidth = String(outcomes.length).length;
  outcomes.forEach((o, i) => {
    let text: string;
    if (o.outcome === "ok") {
      text = p.paint(o.failed ? "red" : "green", describeResult(o));
      if (o.failed) text += p.paint("red", ` (expected ${o.expect})`);
    } else if (o.outcome === "error") {
      const e = o.error!;
      const expected = o.expect === e.code;
      text = p.paint(expected ? "yellow" : "red", e.code) +
        (expected ? " (expected)" : "") + p.paint("dim", ` ${e.message}`);
      if (!expected && o.expect !== undefined) {
        text += p.paint("red", ` (expected ${o.expect})`);
      }
    } else {
      text = p.paint("red", `skipped: ${o.skipped}`);
    }
    out.line(
      `${padStart(o.index, indexWidth)}  ${o.by.padEnd(byWidth)}  ${
        calls[i].padEnd(width)
      }  ${text}`,
    );
  });
  let failed = 0;
  for (const o of outcomes) if (o.failed) failed++;
  out.line();
  out.line(
    `${outcomes.length} steps, ${
      failed === 0 ? "none failed" : p.paint("red", `${failed} failed`)
    }`,
  );
  for (const d of domains) {
    out.line();
    out.line(`Event channel information for domain ${d.id}:`);
    out.line("    port [p/m/s]");
    for (const line of tableLines(d.ports)) out.line(line);
  }
  out.line();
  if (invariants.length === 0) {
    out.line("model invariants: hold");
  } else {
    out.line(p.paint("red", `model invariants broken (${invariants.length}):`));
    for (const v of invariants) out.line(`  ${v}`);
  }
}
