"""Validate an Envoy bootstrap YAML against Envoy's API schema (PyPI `envoy-data-plane`).

Parses the file strictly into `envoy.config.bootstrap.v3.Bootstrap` (unknown fields and
unregistered `@type`s fail), then prints, as JSON, what the gatetrace tests check: each wasm
HTTP filter's plugin file, root id and configuration, and the names of the clusters.

Usage: python validate.py envoy.yaml    (exit 0 and JSON on stdout, or exit 1 and the error)
A `.json` file (the same document as JSON) needs no PyYAML.
"""

import importlib
import json
import pkgutil
import sys

import envoy_data_plane
from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap
from envoy_data_plane.envoy.extensions.filters.http.wasm.v3 import Wasm
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
    HttpConnectionManager,
)
from envoy_data_plane.google.protobuf import StringValue

WASM_URL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
HCM_URL = (
    "type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager"
)


def register_all_types():
    """Import every generated module so each `@type` in the file resolves."""
    for module in pkgutil.walk_packages(envoy_data_plane.__path__, "envoy_data_plane."):
        try:
            importlib.import_module(module.name)
        except Exception:  # noqa: BLE001 - a module we cannot import just stays unregistered
            pass


def main(path):
    with open(path, encoding="utf-8") as handle:
        if path.endswith(".json"):
            document = json.load(handle)
        else:
            import yaml  # PyYAML, only for YAML input

            document = yaml.safe_load(handle)
    register_all_types()
    bootstrap = Bootstrap.from_dict(document)  # strict: unknown fields raise

    filters = []
    for listener in bootstrap.static_resources.listeners:
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                if network_filter.typed_config.type_url != HCM_URL:
                    continue
                hcm = HttpConnectionManager.parse(network_filter.typed_config.value)
                for http_filter in hcm.http_filters:
                    if http_filter.typed_config.type_url != WASM_URL:
                        continue
                    plugin = Wasm.parse(http_filter.typed_config.value).config
                    configuration = StringValue.parse(plugin.configuration.value).value
                    filters.append(
                        {
                            "listener": listener.name,
                            "name": plugin.name,
                            "root_id": plugin.root_id,
                            "vm_id": plugin.vm_config.vm_id,
                            "runtime": plugin.vm_config.runtime,
                            "filename": plugin.vm_config.code.local.filename,
                            "configuration": configuration,
                        }
                    )
    clusters = [cluster.name for cluster in bootstrap.static_resources.clusters]
    json.dump({"wasm_filters": filters, "clusters": clusters}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except Exception as error:  # noqa: BLE001 - report any schema error and fail
        sys.exit(f"{sys.argv[1]}: invalid Envoy bootstrap: {type(error).__name__}: {error}")
