#!/usr/bin/env bash
# Checks the module map (drawn in Package.swift) against the code: every `import X` of every target under
# Sources/ must name a module of a lower layer that the target declares as a dependency in Package.swift.
# Test targets (under Tests/) must declare what they import too. Executables and test targets must not
# declare what they do not import. Exit 1, naming the file, the import and the rule, on the first pass
# that finds anything; 0 when the map is true.
set -euo pipefail
cd "$(dirname "$0")/.."

# The layers, bottom first: the one definition of the order. A module may import only modules of a lower
# layer (never one of its own layer or above).
layers=(
    "CHDF5 COpenBLAS CJPEG CPNG CZeroMQ Reporting Provenance"
    "CShims FileIntegrity CLI"
    "HDF5 BLAS Wire ImageInput WeightsDownload Augmentation"
    "VGG16 Storage DataCheck"
    "TopModel ImageFeatures Export"
    "Extraction Report FineTuning"
    "WorkerRuntime DistributedTuning"
    "WorkerCommandLine"
    "Coordinator Worker Dev"
)
# The toolchain's modules: importable anywhere without a declaration.
toolchain=" Foundation FoundationEssentials FoundationNetworking FoundationXML Dispatch Glibc Darwin "
toolchain+="Synchronization Testing XCTest "
# Products of package dependencies: outside the layers, but they must be declared.
packages=" ArgumentParser Logging Crypto "

# `import X`, `@testable import X`, `public import X`, `import struct X.Y`: X is the fifth group.
access='(public|package|internal|private|fileprivate)'
declaration='(class |struct |enum |func |protocol |var |let |typealias )'
import_line="^[[:space:]]*(@testable[[:space:]]+)?(${access}[[:space:]]+)?import[[:space:]]+${declaration}?([A-Za-z0-9_]+).*"

declare -A layer_of
for index in "${!layers[@]}"; do
    for module in ${layers[index]}; do layer_of[$module]=$index; done
done

# A scratch path of its own: no wait for the lock of a build or test run in .build.
manifest=$(swift package --scratch-path .build/check-layers dump-package)
failures=0
fail() {
    echo "$1" >&2
    failures=$((failures + 1))
}

targets=$(jq -r '.targets[] | select(.type != "system") | [.name, .type, (.path // "")] | @tsv' <<<"$manifest")
while IFS=$'\t' read -r target kind path; do
    if [[ -z $path ]]; then
        if [[ $kind == test ]]; then path="Tests/$target"; else path="Sources/$target"; fi
    fi
    declared=" $(jq -r --arg t "$target" \
        '.targets[] | select(.name == $t) | [.dependencies[] | (.byName // .target // .product)[0]] | join(" ")' \
        <<<"$manifest") "
    imported=" "
    while IFS= read -r file; do
        while IFS= read -r module; do
            [[ -z $module ]] && continue
            imported+="$module "
            [[ $toolchain == *" $module "* ]] && continue
            if [[ $declared != *" $module "* ]]; then
                fail "$file: import $module: $target does not declare $module as a dependency in Package.swift"
                continue
            fi
            [[ $path == Sources/* ]] || continue
            [[ $packages == *" $module "* ]] && continue
            if [[ -z ${layer_of[$module]+set} ]]; then
                fail "$file: import $module: $module is in no layer of scripts/check-layers.sh"
            elif [[ -z ${layer_of[$target]+set} ]]; then
                fail "$file: import $module: $target is in no layer of scripts/check-layers.sh"
            elif ((layer_of[$module] >= layer_of[$target])); then
                rule="$target (layer ${layer_of[$target]}) may import only lower layers"
                fail "$file: import $module: $rule, $module is at layer ${layer_of[$module]}"
            fi
        done < <(sed -nE "s/$import_line/\\5/p" "$file")
    done < <(find "$path" -name '*.swift' | sort)
    if [[ $kind == executable || $kind == test ]]; then
        for module in $declared; do
            if [[ $imported != *" $module "* ]]; then
                fail "Package.swift: $target declares $module but no file of $path imports it"
            fi
        done
    fi
done <<<"$targets"

if ((failures > 0)); then
    echo "check-layers: $failures problem(s); the layers are listed in scripts/check-layers.sh" >&2
    exit 1
fi
echo "check-layers: every import points to a lower, declared module"
