/**
 * Runs a scenario's steps on a fresh hypervisor model, one step at a time,
 * with lint mode and the scenario's faults when asked: each step is one
 * operation for both (a fault "at step N" acts just before step N).
 *
 * @example
 * ```ts
 * import { ScenarioRunner } from "./runner.ts";
 * import assert from "node:assert/strict";
 * const runner = new ScenarioRunner({ lint: true });
 * runner.createDomain({ id: 0, privileged: true });
 * runner.createDomain({ id: 1 });
 * const offer = runner.step({ op: "alloc_unbound", caller: 0, dom: 0, remote_dom: 1, as: "p" }, 1);
 * assert.equal(offer.outcome, "ok");
 * runner.step({ op: "send", caller: 0, port: "$p" }, 2); // nobody bound it
 * assert.deepEqual(runner.findings().map((f) => f.code), ["notify-unbound-peer"]);
 * ```
 *
 * @module
 */

import type { ChannelStatus } from "../../../hypercalls.ts";
import { EventChannelError } from "../../../errors.ts";
import { DOMID_SELF } from "../../../xen/domid.ts";
import { Hypervisor } from "../hypervisor/hypervisor.ts";
import { EVTCHN_OPS } from "../hypervisor/op_table.ts";
import type { EvtchnOpName } from "../../../xen/event_channel.ts";
import { LinuxGuest } from "../linux_guest.ts";
import { defaultDom0Pirqs } from "../linux/profile.ts";
import { type Finding, Linter } from "../lint.ts";
import { FaultInjector, type InjectedFault } from "../faults.ts";
import {
  literalOperand,
  type Operand,
  OPS,
  type Scenario,
  ScenarioError,
  type ScenarioStep,
  type SourceLocation,
} from "./language.ts";
import { checkInvariants } from "../hypervisor/invariants.ts";
import { inspectDomains, inspectPorts } from "../hypervisor/inspect.ts";
import { type DumpRow, dumpRow } from "../hypervisor/dump.ts";
import { macrotask, Pacer } from "../../../util/pace.ts";

/** What a step did. */
export interface StepOutcome {
  /** The step's number, from 1. */
  index: number;
  /** The operation. */
  op: string;
  /** Who did it: `d<caller>`, `xen` or `tools`. */
  by: string;
  /** Its arguments, resolved. */
  args: Record<string, number | boolean | string>;
  /** The `$name` operands, by field. */
  refs: Record<string, string>;
  /** `ok`, `error` (the op refused) or `skipped` (an operand had no value). */
  outcome: "ok" | "error" | "skipped";
  /** The port or status it returned. */
  result?: number | ChannelStatus;
  /** The name given to its port. */
  as?: string;
  /** The refusal. */
  error?: { op: string; code: string; errno: number; message: string };
  /** Why it was skipped. */
  skipped?: string;
  /** The expected outcome, if the step gave one. */
  expect?: string;
  /** Whether the outcome is not the expected one. */
  failed: boolean;
}

/** The state of the model after a run. */
export interface RunSummary {
  /** Broken invariants (`checkInvariants`). */
  invariants: string[];
  /** Each live domain and its `xl debug-keys e` rows. */
  domains: {
    id: number;
    privileged: boolean;
    vcpus: number;
    abi: string;
    ports: DumpRow[];
  }[];
  /** Lint's findings, in lint mode. */
  findings?: Finding[];
  /** The faults injected, when the scenario has faults. */
  faults?: InjectedFault[];
}

/** Options for {@linkcode ScenarioRunner}. */
export interface ScenarioRunnerOptions {
  /** Lint mode: record findings beside the run. */
  lint?: boolean;
  /** The scenario's seed and faults. */
  scenario?: Pick<Scenario, "seed" | "faults">;
  /** How a refusal is worded in an outcome (default: its message). */
  errorMessage?: (error: EventChannelError) => string;
}

/** Runs a scenario's steps on a fresh model. */
export class ScenarioRunner {
  /** The model. */
  readonly xen: Hypervisor = new Hypervisor();
  readonly #names = new Map<string, number | undefined>();
  readonly #lint: Linter | undefined;
  readonly #faults: FaultInjector | undefined;
  readonly #message: (error: EventChannelError) => string;
  readonly #record: boolean;

  /**
   * A runner.
   *
   * @param options Lint, faults, error wording.
   */
  constructor(options: ScenarioRunnerOptions = {}) {
    const faults = options.scenario?.faults;
    if (faults !== undefined) {
      this.#faults = new FaultInjector(
        this.xen,
        faults,
        options.scenario?.seed ?? 0,
        (domain) => this.xen.destroyDomain(domain),
        Object.keys(OPS),
      );
    }
    if (options.lint || this.#faults !== undefined) {
      this.#lint = new Linter(this.xen, {}, {
        record: options.lint ?? false,
        onStep: this.#faults?.onStep,
      });
    }
    this.#message = options.errorMessage ?? ((e) => e.message);
    this.#record = options.lint ?? false;
  }

  /**
   * Creates a scenario's domains, in order.
   *
   * @param domains The scenario's `domains`.
   * @param locate Where a path is in the scenario's file.
   * @throws {ScenarioError} Naming the domain Xen refused.
   */
  createDomains(
    domains: Scenario["domains"],
    locate?: (path: string) => SourceLocation,
  ): void {
    domains.forEach((domain, i) => {
      try {
        this.createDomain(
          domain as unknown as Record<string, number | boolean | string>,
        );
      } catch (error) {
        if (!(error instanceof EventChannelError)) throw error;
        const path = `domains[${i}]${error.argument === "domain" ? ".id" : ""}`;
        throw new ScenarioError(path, this.#message(error), locate?.(path));
      }
    });
  }

  /**
   * Runs steps in order until done or `signal` aborts, yielding to the
   * event loop now and then so that a signal can stop a long run.
   *
   * @param steps The steps.
   * @param signal Stops the run (the steps run so far are returned).
   * @returns The outcomes.
   */
  async run(
    steps: readonly ScenarioStep[],
    signal?: AbortSignal,
  ): Promise<StepOutcome[]> {
    const pacer = new Pacer();
    const outcomes: StepOutcome[] = [];
    for (const [i, step] of steps.entries()) {
      if (pacer.due()) await macrotask();
      if (signal?.aborted) break;
      outcomes.push(this.step(step, i + 1));
    }
    return outcomes;
  }

  /**
   * The model's state now: invariants, every live domain's rows, and in
   * lint or fault mode the findings and faults.
   *
   * @returns The summary.
   */
  summary(): RunSummary {
    const summary: RunSummary = {
      invariants: checkInvariants(this.xen),
      domains: inspectDomains(this.xen).map((d) => ({
        id: d.id,
        privileged: d.privileged,
        vcpus: d.vcpus,
        abi: d.abi,
        ports: inspectPorts(this.xen.domain(d.id)!).map(dumpRow),
      })),
    };
    if (this.#faults !== undefined) summary.faults = this.#faults.log();
    if (this.#lint !== undefined && this.#record) {
      summary.findings = this.#lint.findings({ final: true });
    }
    return summary;
  }

  /** Lint's findings at the end of the run (none without lint). */
  findings(): Finding[] {
    return this.#lint?.findings({ final: true }) ?? [];
  }

  /** The faults injected so far. */
  injectedFaults(): InjectedFault[] {
    return this.#faults?.log() ?? [];
  }

  /**
   * Creates a domain (a scenario's `domains` entry or `create_domain`).
   *
   * @param fields Its fields, as in the scenario.
   */
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
    this.#faults?.domainCreated(domain);
  }

  /**
   * Runs one step.
   *
   * @param step The step, checked by `validateScenario`.
   * @param index Its number, from 1.
   * @returns What it did.
   */
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
    const base = { index, op: step.op, by, args, refs, expect: step.expect };
    const errno = skipped === undefined
      ? this.#faults?.failure(step.op)
      : undefined;
    this.#lint?.op();
    if (skipped !== undefined) {
      if (step.as !== undefined) this.#names.set(step.as, undefined);
      return { ...base, outcome: "skipped", skipped, failed: true };
    }
    try {
      if (errno !== undefined) {
        throw new EventChannelError(step.op, errno, {
          detail: "injected fault (scenario faults.fail)",
        });
      }
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
          message: this.#message(error),
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
    const lint = this.#lint;
    if (Object.hasOwn(EVTCHN_OPS, op)) {
      // An EVTCHNOP, issued through the op table: the scenario op's fields
      // are the table's arguments, in Xen's order (language.ts).
      const caller = n("caller");
      if (op === "close") lint?.unbinding(undefined, caller, n("port"));
      if (op === "send") lint?.notified(undefined, caller, n("port"));
      const spec = OPS[op];
      const args = Object.keys(spec.fields).map(n);
      const result = xen.hypercall(caller, op as EvtchnOpName, args);
      if (spec.returns === "port") {
        // alloc_unbound allocates in dom; a bind, in the caller's domain.
        const dom = op === "alloc_unbound" && n("dom") !== DOMID_SELF
          ? n("dom")
          : caller;
        lint?.allocated(undefined, dom, result as number);
      }
      return result;
    }
    switch (op) {
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
