/**
 * Xen 4.17's `xen/include/public/domctl.h`: the few `XEN_DOMCTL_*` commands
 * used to make and remove an empty, never-started domain from dom0, as byte
 * offsets (x86-64, little-endian). Checked against xen-project/xen tags
 * RELEASE-4.17.0 … RELEASE-4.17.7 (all say `XEN_DOMCTL_INTERFACE_VERSION
 * 0x00000015`). Other Xen versions use other interface versions and layouts;
 * Xen refuses a mismatched version with `EACCES` before reading anything else.
 *
 * @module
 */

/** `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.17.x. */
export const XEN_DOMCTL_INTERFACE_VERSION_4_17 = 0x00000015;

/** `XEN_DOMCTL_*` command numbers. */
export const XEN_DOMCTL = {
  createdomain: 1,
  destroydomain: 2,
  max_vcpus: 15,
} as const;

/**
 * `struct xen_domctl` (144 bytes): `uint32_t cmd` @0,
 * `uint32_t interface_version` @4, `domid_t domain` @8 (in/out for
 * createdomain), `uint16_t _pad[3]` @10, `union u` @16 (`uint8_t pad[128]`,
 * 8-byte aligned).
 */
export const XEN_DOMCTL_STRUCT = {
  size: 144,
  cmd: 0,
  interface_version: 4,
  domain: 8,
  u: 16,
} as const;

/**
 * `struct xen_domctl_createdomain` (64 bytes) at `u`, as absolute offsets in
 * `struct xen_domctl`: `uint32_t ssidref` @16,
 * `xen_domain_handle_t handle` (`uint8_t[16]`) @20, `uint32_t flags` @36
 * (`XEN_DOMCTL_CDF_*`), `uint32_t iommu_opts` @40, `uint32_t max_vcpus` @44,
 * `uint32_t max_evtchn_port` @48, `int32_t max_grant_frames` @52,
 * `int32_t max_maptrack_frames` @56 (< 0: Xen's default), `uint32_t
 * grant_opts` @60 (low 4 bits: max grant version, 0 is refused),
 * `uint32_t vmtrace_size` @64, `uint32_t cpupool_id` @68,
 * `struct xen_arch_domainconfig arch` @72 (x86: `uint32_t emulation_flags`
 * @72, 0 for PV; `uint32_t misc_flags` @76).
 */
export const XEN_DOMCTL_CREATEDOMAIN = {
  ssidref: 16,
  handle: 20,
  flags: 36,
  iommu_opts: 40,
  max_vcpus: 44,
  max_evtchn_port: 48,
  max_grant_frames: 52,
  max_maptrack_frames: 56,
  grant_opts: 60,
  vmtrace_size: 64,
  cpupool_id: 68,
  arch_emulation_flags: 72,
  arch_misc_flags: 76,
  end: 80,
} as const;

/** `struct xen_domctl_max_vcpus { uint32_t max; }` at `u` (@16). */
export const XEN_DOMCTL_MAX_VCPUS = { max: 16 } as const;

/** What {@linkcode encodeCreateDomain} writes. */
export interface CreateDomainFields {
  /** The wanted id, or 0 to let Xen choose. */
  domain: number;
  /** `max_vcpus` (≥ 1). */
  maxVcpus: number;
  /** `max_evtchn_port`. */
  maxEvtchnPort: number;
  /** `xen_domain_handle_t` (16 bytes, a UUID); zeros when omitted. */
  handle?: Uint8Array;
}

function header(
  view: DataView,
  cmd: number,
  domain: number,
  version: number,
): void {
  for (let i = 0; i < XEN_DOMCTL_STRUCT.size; i += 4) {
    view.setUint32(i, 0, true);
  }
  view.setUint32(XEN_DOMCTL_STRUCT.cmd, cmd, true);
  view.setUint32(XEN_DOMCTL_STRUCT.interface_version, version, true);
  view.setUint16(XEN_DOMCTL_STRUCT.domain, domain, true);
}

/**
 * Fills `struct xen_domctl` for `XEN_DOMCTL_createdomain` of a PV domain
 * (flags 0, no IOMMU, grant version 1, default grant and maptrack frames,
 * cpupool 0, no emulation).
 *
 * @param view At least 144 bytes.
 * @param fields The inputs.
 * @param version The interface version.
 */
export function encodeCreateDomain(
  view: DataView,
  fields: CreateDomainFields,
  version: number = XEN_DOMCTL_INTERFACE_VERSION_4_17,
): void {
  const f = XEN_DOMCTL_CREATEDOMAIN;
  header(view, XEN_DOMCTL.createdomain, fields.domain, version);
  if (fields.handle !== undefined) {
    for (let i = 0; i < 16 && i < fields.handle.length; i++) {
      view.setUint8(f.handle + i, fields.handle[i]);
    }
  }
  view.setUint32(f.max_vcpus, fields.maxVcpus, true);
  view.setUint32(f.max_evtchn_port, fields.maxEvtchnPort, true);
  view.setInt32(f.max_grant_frames, -1, true);
  view.setInt32(f.max_maptrack_frames, -1, true);
  view.setUint32(f.grant_opts, 1, true);
}

/**
 * Fills `struct xen_domctl` for `XEN_DOMCTL_max_vcpus`.
 *
 * @param view At least 144 bytes.
 * @param domain The domain.
 * @param max The vCPU count, equal to createdomain's `max_vcpus`.
 * @param version The interface version.
 */
export function encodeMaxVcpus(
  view: DataView,
  domain: number,
  max: number,
  version: number = XEN_DOMCTL_INTERFACE_VERSION_4_17,
): void {
  header(view, XEN_DOMCTL.max_vcpus, domain, version);
  view.setUint32(XEN_DOMCTL_MAX_VCPUS.max, max, true);
}

/**
 * Fills `struct xen_domctl` for `XEN_DOMCTL_destroydomain`.
 *
 * @param view At least 144 bytes.
 * @param domain The domain.
 * @param version The interface version.
 */
export function encodeDestroyDomain(
  view: DataView,
  domain: number,
  version: number = XEN_DOMCTL_INTERFACE_VERSION_4_17,
): void {
  header(view, XEN_DOMCTL.destroydomain, domain, version);
}
