// The package version, from deno.json.

import config from "../deno.json" with { type: "json" };

/** The version of the evtchn package. */
export const VERSION: string = config.version;
