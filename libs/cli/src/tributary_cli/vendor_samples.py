"""Realistic vendor exports for demos and end-to-end tests.

The CSV exports (AWS Migration Hub import template, Azure Migrate import template,
ServiceNow CMDB list export) ship as files under ``samples/vendor/``; see
:func:`vendor_sample`. An RVTools export is a workbook, which is built here instead of
being checked in as a binary: :func:`rvtools_xlsx_bytes` writes one with the sheets an
RVTools export has, deliberately *not* starting with vInfo, so a test proves that the
importer picks the vInfo sheet rather than the first one.

openpyxl is imported only when a workbook is built: it is installed with the ingest
service, and nothing else in the CLI needs it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from importlib import resources
from importlib.abc import Traversable
from typing import Any

VENDOR_SAMPLES: tuple[str, ...] = ("aws_migration_hub.csv", "azure_migrate.csv", "servicenow_cmdb.csv")


def vendor_sample(filename: str) -> Traversable:
    """A sample vendor export shipped with the package, e.g. ``"azure_migrate.csv"``."""
    if filename not in VENDOR_SAMPLES:
        raise KeyError(filename)
    return resources.files("tributary_cli") / "samples" / "vendor" / filename


# --- RVTools --------------------------------------------------------------------------
# Sheet headers as RVTools 4.x writes them.

VINFO_HEADER: tuple[str, ...] = (
    "VM", "Powerstate", "Template", "SRM Placeholder", "Config status", "DNS Name", "Connection state",
    "Guest state", "Heartbeat", "Consolidation Needed", "PowerOn", "Suspended To Memory", "Suspend time",
    "Suspend Interval", "Creation date", "Change Version", "CPUs", "Overall Cpu Readiness", "Memory",
    "Active Memory", "NICs", "Disks", "Total disk capacity MiB", "Fixed Passthru HotPlug",
    "min Required EVC Mode Key", "Latency Sensitivity", "Op Notification Timeout", "EnableUUID", "CBT",
    "Primary IP Address", "Network #1", "Network #2", "Network #3", "Network #4", "Network #5", "Network #6",
    "Network #7", "Network #8", "Num Monitors", "Video Ram KiB", "Resource pool", "Folder ID", "Folder",
    "vApp", "DAS protection", "FT State", "FT Role", "FT Latency", "FT Bandwidth", "FT Sec. Latency",
    "Vm Failover In Progress", "Provisioned MiB", "In Use MiB", "Unshared MiB", "HA Restart Priority",
    "HA Isolation Response", "HA VM Monitoring", "Cluster rule(s)", "Cluster rule name(s)", "Boot Required",
    "Boot delay", "Boot retry delay", "Boot retry enabled", "Boot BIOS setup", "Reboot PowerOff",
    "EFI Secure boot", "Firmware", "HW version", "HW upgrade status", "HW upgrade policy", "HW target", "Path",
    "Log directory", "Snapshot directory", "Suspend directory", "Annotation", "Datacenter", "Cluster", "Host",
    "OS according to the configuration file", "OS according to the VMware Tools", "Customization Info",
    "Guest Detailed Data", "VM ID", "SMBIOS UUID", "VM UUID", "VI SDK Server type", "VI SDK API Version",
    "VI SDK Server", "VI SDK UUID",
)

# Columns every per-VM sheet ends with, after its own.
_VM_TRAILER = (
    "Annotation", "Datacenter", "Cluster", "Host", "Folder", "OS according to the configuration file",
    "OS according to the VMware Tools", "VM ID", "VM UUID", "VI SDK Server", "VI SDK UUID",
)
VCPU_HEADER: tuple[str, ...] = (
    "VM", "Powerstate", "Template", "SRM Placeholder", "CPUs", "Sockets", "Cores p/s", "Max", "Overall", "Level",
    "Shares", "Reservation", "Entitlement", "DRS Entitlement", "Limit", "Hot Add", "Hot Remove",
    "Numa Hotadd Exposed",
) + _VM_TRAILER
VMEMORY_HEADER: tuple[str, ...] = (
    "VM", "Powerstate", "Template", "SRM Placeholder", "Size MiB", "Memory Reservation Locked To Max", "Overhead",
    "Max", "Consumed", "Consumed Overhead", "Private", "Shared", "Swapped", "Ballooned", "Active", "Entitlement",
    "DRS Entitlement", "Level", "Shares", "Reservation", "Limit", "Hot Add",
) + _VM_TRAILER
VDISK_HEADER: tuple[str, ...] = (
    "VM", "Powerstate", "Template", "SRM Placeholder", "Disk", "Disk Key", "Disk UUID", "Disk Path",
    "Capacity MiB", "Raw", "Disk Mode", "Sharing mode", "Thin", "Eagerly Scrub", "Split", "Write Through",
    "Level", "Shares", "Reservation", "Limit", "Controller", "Label", "SCSI Unit #", "Unit #", "Shared Bus",
    "Path", "Raw LUN ID", "Raw Comp. Mode", "Internal Sort Column",
) + _VM_TRAILER
VHOST_HEADER: tuple[str, ...] = (
    "Host", "Datacenter", "Cluster", "Config status", "in Maintenance Mode", "CPU Model", "Speed", "HT Available",
    "HT Active", "# CPU", "Cores per CPU", "# Cores", "CPU usage %", "# Memory", "Memory usage %", "# NICs",
    "# HBAs", "# VMs total", "# VMs", "VMs per Core", "# vCPUs", "vCPUs per Core", "vRAM", "ESX Version",
    "Boot time", "Vendor", "Model", "Serial number", "Object ID", "UUID", "VI SDK Server", "VI SDK UUID",
)
VMETADATA_HEADER: tuple[str, ...] = ("RVTools major version", "RVTools version", "xlsx creation datetime", "Server")

# Sheet order of the generated workbook: vInfo deliberately not first.
RVTOOLS_SHEETS: tuple[str, ...] = ("vCPU", "vMemory", "vInfo", "vDisk", "vHost", "vMetaData")

_VCENTER = "vcsa01.corp.local"
_VCENTER_UUID = "6f3b1c2e-8a4d-4e5f-9b7a-1c2d3e4f5a6b"
_RHEL = "Red Hat Enterprise Linux 8 (64-bit)"
_WIN19 = "Microsoft Windows Server 2019 (64-bit)"
_WIN08 = "Microsoft Windows Server 2008 R2 (64-bit)"
_UBUNTU = "Ubuntu Linux (64-bit)"

# The VMs of the sample estate. Deliberately messy where real exports are: a powered-off
# VM has no guest data (no IP, no VMware Tools OS), a template has no IP, a VM name in
# upper case, a DNS name that differs from the VM name, an empty annotation.
_VMS: tuple[dict[str, Any], ...] = (
    {"VM": "web-01", "Powerstate": "poweredOn", "DNS Name": "web-01.corp.local", "CPUs": 2, "Memory": 4096,
     "Disks": 1, "Capacity": 40960, "In Use": 30211, "Primary IP Address": "10.10.1.11", "Network #1": "VLAN110-Web",
     "Cluster": "CL-PROD-01", "Host": "esx01.corp.local", "OS": _RHEL, "Tools OS": _RHEL,
     "Annotation": "Public web front end", "Folder": "/Prod/Web"},
    {"VM": "web-02", "Powerstate": "poweredOn", "DNS Name": "web-02.corp.local", "CPUs": 2, "Memory": 4096,
     "Disks": 1, "Capacity": 40960, "In Use": 29876, "Primary IP Address": "10.10.1.12", "Network #1": "VLAN110-Web",
     "Cluster": "CL-PROD-01", "Host": "esx02.corp.local", "OS": _RHEL, "Tools OS": _RHEL,
     "Annotation": "Public web front end", "Folder": "/Prod/Web"},
    {"VM": "app-01", "Powerstate": "poweredOn", "DNS Name": "app-01.corp.local", "CPUs": 4, "Memory": 16384,
     "Disks": 2, "Capacity": 163840, "In Use": 98304, "Primary IP Address": "10.10.2.21", "Network #1": "VLAN120-App",
     "Cluster": "CL-PROD-01", "Host": "esx01.corp.local", "OS": _WIN19, "Tools OS": _WIN19,
     "Annotation": "Order service (IIS)", "Folder": "/Prod/App"},
    {"VM": "DB-01", "Powerstate": "poweredOn", "DNS Name": "sqlprod01.corp.local", "CPUs": 8, "Memory": 65536,
     "Disks": 3, "Capacity": 1048576, "In Use": 716800, "Primary IP Address": "10.10.3.31",
     "Network #1": "VLAN130-Data", "Cluster": "CL-PROD-02", "Host": "esx03.corp.local", "OS": _WIN19,
     "Tools OS": _WIN19, "Annotation": "SQL Server 2019 - orders DB", "Folder": "/Prod/Data"},
    {"VM": "legacy-ftp", "Powerstate": "poweredOff", "DNS Name": None, "CPUs": 1, "Memory": 2048, "Disks": 1,
     "Capacity": 61440, "In Use": 61440, "Primary IP Address": None, "Network #1": "VLAN140-DMZ",
     "Cluster": "CL-PROD-02", "Host": "esx03.corp.local", "OS": _WIN08, "Tools OS": None,
     "Annotation": "", "Folder": "/Legacy"},
    {"VM": "tpl-rhel8", "Powerstate": "poweredOff", "Template": "True", "DNS Name": None, "CPUs": 2,
     "Memory": 4096, "Disks": 1, "Capacity": 20480, "In Use": 4821, "Primary IP Address": None,
     "Network #1": "VLAN110-Web", "Cluster": "CL-PROD-01", "Host": "esx02.corp.local", "OS": _RHEL,
     "Tools OS": None, "Annotation": "Golden image 2024-05", "Folder": "/Templates"},
    {"VM": "batch-01", "Powerstate": "suspended", "DNS Name": "batch-01.corp.local", "CPUs": 4, "Memory": 8192,
     "Disks": 1, "Capacity": 102400, "In Use": 51200, "Primary IP Address": "10.10.2.41",
     "Network #1": "VLAN120-App", "Cluster": "CL-PROD-02", "Host": "esx04.corp.local", "OS": _UBUNTU,
     "Tools OS": "Ubuntu Linux (64-bit)", "Annotation": "Nightly billing batch", "Folder": "/Prod/App"},
    {"VM": "k8s-node-01", "Powerstate": "poweredOn", "DNS Name": "k8s-node-01.corp.local", "CPUs": 8,
     "Memory": 32768, "Disks": 2, "Capacity": 204800, "In Use": 122880, "Primary IP Address": "10.10.4.51",
     "Network #1": "VLAN150-K8s", "Cluster": "CL-PROD-02", "Host": "esx04.corp.local", "OS": _UBUNTU,
     "Tools OS": _UBUNTU, "Annotation": "Kubernetes worker", "Folder": "/Prod/Platform"},
)

_HOSTS: tuple[dict[str, Any], ...] = (
    {"Host": "esx01.corp.local", "Cluster": "CL-PROD-01", "Serial number": "CZ2210ABCD", "Object ID": "host-101"},
    {"Host": "esx02.corp.local", "Cluster": "CL-PROD-01", "Serial number": "CZ2210ABCE", "Object ID": "host-102"},
    {"Host": "esx03.corp.local", "Cluster": "CL-PROD-02", "Serial number": "CZ2210ABCF", "Object ID": "host-201"},
    {"Host": "esx04.corp.local", "Cluster": "CL-PROD-02", "Serial number": "CZ2210ABCG", "Object ID": "host-202"},
)


def _vm_ids(index: int) -> dict[str, str]:
    return {"VM ID": f"vm-{1001 + index}", "VM UUID": f"5003{index:04x}-6c1e-4b7a-9d2f-0a1b2c3d{index:04x}"}


def _trailer(vm: Mapping[str, Any], index: int) -> dict[str, Any]:
    return {
        "Annotation": vm["Annotation"] or None, "Datacenter": "DC-LONDON", "Cluster": vm["Cluster"],
        "Host": vm["Host"], "Folder": vm["Folder"], "OS according to the configuration file": vm["OS"],
        "OS according to the VMware Tools": vm["Tools OS"], "VI SDK Server": _VCENTER, "VI SDK UUID": _VCENTER_UUID,
        **_vm_ids(index),
    }


def _vinfo_row(vm: Mapping[str, Any], index: int) -> dict[str, Any]:
    on = vm["Powerstate"] == "poweredOn"
    provisioned = vm["Capacity"] + vm["Memory"]  # thick disks plus the swap file
    return {
        "VM": vm["VM"], "Powerstate": vm["Powerstate"], "Template": vm.get("Template", "False"),
        "SRM Placeholder": "False", "Config status": "green", "DNS Name": vm["DNS Name"],
        "Connection state": "connected", "Guest state": "running" if on else "notRunning",
        "Heartbeat": "green" if on else "gray", "Consolidation Needed": "False",
        "PowerOn": "2024/05/02 06:14:31" if on else None, "Suspended To Memory": "False",
        "Suspend time": "2024/06/01 22:00:05" if vm["Powerstate"] == "suspended" else None,
        "Creation date": "2021/03/15 10:22:48", "Change Version": f"2024-05-0{index + 1}T06:14:31.{index}Z",
        "CPUs": vm["CPUs"], "Overall Cpu Readiness": 0.1 if on else 0, "Memory": vm["Memory"],
        "Active Memory": vm["Memory"] // 4 if on else 0, "NICs": 1, "Disks": vm["Disks"],
        "Total disk capacity MiB": vm["Capacity"], "Latency Sensitivity": "normal", "EnableUUID": "False",
        "CBT": "True", "Primary IP Address": vm["Primary IP Address"], "Network #1": vm["Network #1"],
        "Num Monitors": 1, "Video Ram KiB": 8192, "Resource pool": "Resources", "Folder ID": f"group-v{300 + index}",
        "DAS protection": "True" if on else None, "FT State": "notConfigured", "Vm Failover In Progress": "False",
        "Provisioned MiB": provisioned, "In Use MiB": vm["In Use"], "Unshared MiB": vm["In Use"],
        "HA Restart Priority": "clusterRestartPriority", "HA Isolation Response": "none",
        "HA VM Monitoring": "vmMonitoringDisabled", "Boot Required": "False", "Boot delay": 0,
        "Boot retry delay": 10000, "Boot retry enabled": "False", "Boot BIOS setup": "False",
        "Reboot PowerOff": "False", "EFI Secure boot": "False",
        "Firmware": "efi" if "Windows Server 2019" in vm["OS"] else "bios", "HW version": "vmx-19",
        "HW upgrade status": "none", "HW upgrade policy": "never",
        "Path": f"[DS-PROD-0{index % 2 + 1}] {vm['VM']}/{vm['VM']}.vmx",
        "Log directory": f"[DS-PROD-0{index % 2 + 1}] {vm['VM']}",
        "Snapshot directory": f"[DS-PROD-0{index % 2 + 1}] {vm['VM']}",
        "Suspend directory": f"[DS-PROD-0{index % 2 + 1}] {vm['VM']}",
        "VI SDK Server type": "VMware vCenter Server", "VI SDK API Version": "8.0.2.0",
        "SMBIOS UUID": f"4203{index:04x}-aa10-bb20-cc30-dd40ee50{index:04x}",
        **_trailer(vm, index),
    }


def _vcpu_row(vm: Mapping[str, Any], index: int) -> dict[str, Any]:
    return {
        "VM": vm["VM"], "Powerstate": vm["Powerstate"], "Template": vm.get("Template", "False"),
        "SRM Placeholder": "False", "CPUs": vm["CPUs"], "Sockets": vm["CPUs"], "Cores p/s": 1,
        "Max": vm["CPUs"] * 2400, "Overall": 310 if vm["Powerstate"] == "poweredOn" else 0, "Level": "normal",
        "Shares": vm["CPUs"] * 1000, "Reservation": 0, "Limit": -1, "Hot Add": "False", "Hot Remove": "False",
        "Numa Hotadd Exposed": "False", **_trailer(vm, index),
    }


def _vmemory_row(vm: Mapping[str, Any], index: int) -> dict[str, Any]:
    on = vm["Powerstate"] == "poweredOn"
    return {
        "VM": vm["VM"], "Powerstate": vm["Powerstate"], "Template": vm.get("Template", "False"),
        "SRM Placeholder": "False", "Size MiB": vm["Memory"], "Memory Reservation Locked To Max": "False",
        "Max": vm["Memory"], "Consumed": vm["Memory"] // 2 if on else 0, "Active": vm["Memory"] // 4 if on else 0,
        "Level": "normal", "Shares": vm["Memory"] * 10, "Reservation": 0, "Limit": -1, "Hot Add": "False",
        **_trailer(vm, index),
    }


def _vdisk_rows(vm: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    size = vm["Capacity"] // vm["Disks"]
    return [
        {
            "VM": vm["VM"], "Powerstate": vm["Powerstate"], "Template": vm.get("Template", "False"),
            "SRM Placeholder": "False", "Disk": f"Hard disk {disk + 1}", "Disk Key": 2000 + disk,
            "Capacity MiB": size, "Raw": "False", "Disk Mode": "persistent", "Thin": "True" if disk else "False",
            "Controller": "SCSI controller 0", "Label": f"Hard disk {disk + 1}", "Unit #": disk,
            "Path": f"[DS-PROD-0{index % 2 + 1}] {vm['VM']}/{vm['VM']}_{disk}.vmdk", **_trailer(vm, index),
        }
        for disk in range(vm["Disks"])
    ]


def _vhost_row(host: Mapping[str, Any], vms: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    mine = [vm for vm in vms if vm["Host"] == host["Host"]]
    return {
        **host, "Datacenter": "DC-LONDON", "Config status": "green", "in Maintenance Mode": "False",
        "CPU Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "Speed": 2000, "HT Available": "True",
        "HT Active": "True", "# CPU": 2, "Cores per CPU": 32, "# Cores": 64, "CPU usage %": 23, "# Memory": 524288,
        "Memory usage %": 41, "# NICs": 4, "# HBAs": 2, "# VMs total": len(mine),
        "# VMs": sum(vm["Powerstate"] == "poweredOn" for vm in mine), "# vCPUs": sum(vm["CPUs"] for vm in mine),
        "vRAM": sum(vm["Memory"] for vm in mine), "ESX Version": "VMware ESXi 8.0.2 build-22380479",
        "Boot time": "2024/04/20 03:12:09", "Vendor": "HPE", "Model": "ProLiant DL380 Gen10 Plus",
        "UUID": f"38393636-3430-5a43-{host['Object ID'][-3:]}0-000000000000", "VI SDK Server": _VCENTER,
        "VI SDK UUID": _VCENTER_UUID,
    }


def rvtools_rows() -> dict[str, list[dict[str, Any]]]:
    """The sample workbook's rows per sheet, as {column: value} (absent = empty cell)."""
    vms = [dict(vm) for vm in _VMS]
    return {
        "vCPU": [_vcpu_row(vm, i) for i, vm in enumerate(vms)],
        "vMemory": [_vmemory_row(vm, i) for i, vm in enumerate(vms)],
        "vInfo": [_vinfo_row(vm, i) for i, vm in enumerate(vms)],
        "vDisk": [row for i, vm in enumerate(vms) for row in _vdisk_rows(vm, i)],
        "vHost": [_vhost_row(host, vms) for host in _HOSTS],
        "vMetaData": [{"RVTools major version": 4, "RVTools version": "4.6.1.1",
                       "xlsx creation datetime": "2024/06/03 09:41:17", "Server": _VCENTER}],
    }


_HEADERS: dict[str, tuple[str, ...]] = {
    "vCPU": VCPU_HEADER, "vMemory": VMEMORY_HEADER, "vInfo": VINFO_HEADER, "vDisk": VDISK_HEADER,
    "vHost": VHOST_HEADER, "vMetaData": VMETADATA_HEADER,
}


def rvtools_xlsx_bytes() -> bytes:
    """An RVTools-style workbook (8 VMs on 4 ESXi hosts) with vInfo as the third sheet."""
    from openpyxl import Workbook  # see the module docstring

    workbook = Workbook()
    workbook.remove(workbook.active)
    rows = rvtools_rows()
    for title in RVTOOLS_SHEETS:
        header = _HEADERS[title]
        unknown = {column for row in rows[title] for column in row} - set(header)
        if unknown:  # a typo in the tables above would silently drop data
            raise ValueError(f"{title}: columns not in the header: {sorted(unknown)}")
        sheet = workbook.create_sheet(title)
        sheet.append(list(header))
        for row in rows[title]:
            sheet.append([row.get(column) for column in header])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
