/**
 * The differential oracle: record what a backend does as a trace, replay a
 * trace on another backend and compare outcome by outcome, and run seeded
 * random sequences on two backends side by side, shrinking any divergence
 * to a minimal trace. It uses only the module's public API, so a trace
 * recorded on real Xen replays on the model and the other way round. The
 * trace format is described in `oracle/FORMAT.md`.
 *
 * @example Record a built-in scenario on the model and replay it
 * ```ts
 * import { memoryBackend, recordSteps, replayTrace, scenario } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const loopback = scenario("loopback")!;
 * const trace = await recordSteps(loopback.steps, memoryBackend(), {
 *   scenario: loopback.name,
 * });
 * const report = await replayTrace(trace, memoryBackend());
 * assert.equal(report.divergences.length, 0);
 * ```
 *
 * @module
 */

export type {
  ChannelStatus,
  Dom0Hypercalls,
  EventChannelHandle,
  WaitOptions,
} from "../mod.ts";
export {
  backendByName,
  type Environment,
  EnvironmentError,
  linuxBackend,
  memoryBackend,
  type OracleBackend,
  type OracleHandle,
  type OracleSession,
  type SessionOptions,
} from "./backends.ts";
export {
  compareOutcomes,
  describeOutcome,
  ignoredDifferences,
} from "./compare.ts";
export {
  type DiffOptions,
  type DiffReport,
  type GenerateOptions,
  generateSteps,
  prng,
  runDiff,
  runSideBySide,
  shrinkList,
  type SideBySide,
} from "./diff.ts";
export {
  makeHeader,
  Recorder,
  type RecorderOptions,
  RecordingHandle,
  recordingHandle,
  type RecordOptions,
  recordSteps,
} from "./record.ts";
export {
  type ArgKind,
  OP_TABLE,
  type OpName,
  OPS,
  type OpSpec,
  opSpec,
} from "./ops.ts";
export { RefContext, RefError } from "./refs.ts";
export {
  type Divergence,
  formatDivergence,
  RelatedIndex,
  relatedSteps,
  type ReplayOptions,
  type ReplayReport,
  replayTrace,
} from "./replay.ts";
export { errorOutcome, type RunnerHost, StepError, StepRunner } from "./run.ts";
export { type Scenario, scenario, SCENARIOS } from "./scenarios.ts";
export {
  checkStep,
  type DomainRef,
  formatStep,
  formatTrace,
  type JsonValue,
  type Outcome,
  type ParseOptions,
  parseTrace,
  type PortRef,
  type StepInput,
  type Timing,
  toSteps,
  type Trace,
  TRACE_LIMITS,
  TRACE_VERSION,
  type TraceHeader,
  TraceParseError,
  type TraceStep,
} from "./trace.ts";
