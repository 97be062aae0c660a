#!/bin/bash
# dicom_readers.sh: files from onfh's DICOM writer, read back by independent readers (TAP).
#
# `test_dicom_write --emit DIR` writes the samples: an MR image with private tags and nested
# sequences in every transfer syntax (Implicit VR LE, Explicit VR LE and BE, Deflated, RLE), with
# defined and undefined lengths, as a Part 10 file, without preamble, and as a bare data set;
# multi-frame 8 and 16-bit images in every syntax; a three-slice series. Then:
#   dcmdump   (DCMTK) reads every file: exit 0, no E:/W:/F: lines, and the transfer syntax it
#             reports for the data set is the one written;
#   dcmdrle   (DCMTK) decodes every RLE file; pydicom then checks the decoded pixels, so the RLE
#             stream is checked by two decoders;
#   dciodvfy  (dicom3tools) validates every MR file against the MR Image IOD: no "Error" lines
#             (deflated files go through `dcmconv +te` first: dciodvfy cannot inflate);
#   pydicom   (tools/check_dicom.py, Debian's /usr/bin/python3) checks transfer syntax, file
#             layout, every attribute, private and nested elements, geometry and pixels.
# A reader that is not installed is reported as "ok N - # SKIP <reader> not installed".
# Environment (tests/run.sh sets it): ONFH_BUILD, ONFH_ROOT, ONFH_TEST_TMP.
set -u
build=${ONFH_BUILD:?ONFH_BUILD is the build directory, e.g. build/rel}
root=${ONFH_ROOT:-$PWD}
tmp=${ONFH_TEST_TMP:-$(mktemp -d)}
dir=$tmp/dicom_readers
python=/usr/bin/python3
n=0
failed=0

pass() {
    n=$((n + 1))
    echo "ok $n - $1"
}
fail() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
    shift
    printf '%s\n' "$@" | head -n 20 | sed 's/^/#   /'
}
skip() {
    n=$((n + 1))
    echo "ok $n - # SKIP $1"
}
have() {
    command -v "$1" >/dev/null 2>&1
}
# Numbers the "ok - " / "not ok - " lines another program prints, passing "#" lines through.
renumber() {
    local line
    while IFS= read -r line; do
        case $line in
        "ok - "*) pass "${line#ok - }" ;;
        "not ok - "*)
            n=$((n + 1))
            failed=$((failed + 1))
            echo "not ok $n - ${line#not ok - }"
            ;;
        *) echo "$line" ;;
        esac
    done
}
# DCMTK's name for the data set transfer syntax of a UID, as dcmdump prints it.
dcmtk_ts_name() {
    case $1 in
    1.2.840.10008.1.2) echo "Little Endian Implicit" ;;
    1.2.840.10008.1.2.1) echo "Little Endian Explicit" ;;
    1.2.840.10008.1.2.2) echo "Big Endian Explicit" ;;
    1.2.840.10008.1.2.1.99) echo "Deflated Explicit VR Little Endian" ;;
    1.2.840.10008.1.2.5) echo "RLE Lossless" ;;
    esac
}

rm -rf "$dir"
if out=$("$build/tests/test_dicom_write" --emit "$dir" 2>&1) && [ -s "$dir/manifest.txt" ]; then
    pass "test_dicom_write --emit writes $(wc -l <"$dir/manifest.txt") sample files"
else
    fail "test_dicom_write --emit writes the sample files" "$out"
    echo "1..$n"
    exit 1
fi
mapfile -t manifest <"$dir/manifest.txt"

# --- dcmdump -----------------------------------------------------------------------------------
if have dcmdump; then
    for entry in "${manifest[@]}"; do
        read -r name ts form lengths kind <<<"$entry"
        out=$(dcmdump "$dir/$name" 2>&1)
        rc=$?
        bad=$(grep -E '^(E|W|F):' <<<"$out")
        used=$(grep '^# Used TransferSyntax:' <<<"$out" | tail -n 1 | sed 's/^# Used TransferSyntax: //')
        want=$(dcmtk_ts_name "$ts")
        what="dcmdump reads $name ($form, $lengths lengths) as $want"
        if [ "$rc" -eq 0 ] && [ -z "$bad" ] && [ "$used" = "$want" ]; then
            pass "$what"
        else
            fail "$what" "exit $rc, data set read as '$used'" "$bad"
        fi
    done
else
    skip "dcmdump not installed"
fi

# --- dcmdrle: DCMTK decodes the RLE files; pydicom checks what it decoded ------------------------
decoded=$dir/dcmdrle
if have dcmdrle && [ -x "$python" ] && "$python" -c 'import pydicom, numpy' 2>/dev/null; then
    mkdir -p "$decoded"
    : >"$decoded/manifest.txt"
    for entry in "${manifest[@]}"; do
        read -r name ts form lengths kind <<<"$entry"
        [ "$ts" = 1.2.840.10008.1.2.5 ] || continue
        if out=$(dcmdrle "$dir/$name" "$decoded/$name" 2>&1); then
            # DCMTK writes its own Part 10 file: Explicit VR LE, its implementation UID.
            echo "$name 1.2.840.10008.1.2.1 transcoded $lengths $kind" >>"$decoded/manifest.txt"
        else
            fail "dcmdrle decodes $name" "$out"
        fi
    done
    "$python" "$root/tools/check_dicom.py" "$decoded" 2>&1 |
        sed 's/^\(\(not \)\?ok - \)pydicom reads/\1dcmdrle decoded, pydicom reads/' >"$decoded/tap.txt"
    renumber <"$decoded/tap.txt"
else
    skip "dcmdrle or pydicom not installed"
fi

# --- dciodvfy ----------------------------------------------------------------------------------
if have dciodvfy; then
    for entry in "${manifest[@]}"; do
        read -r name ts form lengths kind <<<"$entry"
        case $kind in mr | series) ;; *) continue ;; esac
        file=$dir/$name
        via=""
        if [ "$ts" = 1.2.840.10008.1.2.1.99 ]; then
            if ! have dcmconv; then
                skip "dciodvfy on $name: dcmconv (to inflate) not installed"
                continue
            fi
            file=$dir/inflated_$name
            via=" (inflated by dcmconv +te)"
            if ! out=$(dcmconv +te "$dir/$name" "$file" 2>&1); then
                fail "dcmconv +te inflates $name" "$out"
                continue
            fi
        fi
        out=$(dciodvfy "$file" 2>&1)
        rc=$?
        errors=$(grep 'Error' <<<"$out")
        what="dciodvfy: $name$via is a valid MR Image"
        if [ -z "$errors" ] && grep -q '^MRImage' <<<"$out"; then
            pass "$what"
        else
            fail "$what" "exit $rc" "$errors" "$(grep -v Error <<<"$out" | head -n 5)"
        fi
    done
else
    skip "dciodvfy not installed"
fi

# --- pydicom -----------------------------------------------------------------------------------
if [ -x "$python" ] && "$python" -c 'import pydicom, numpy' 2>/dev/null; then
    "$python" "$root/tools/check_dicom.py" "$dir" >"$dir/pydicom_tap.txt" 2>&1
    renumber <"$dir/pydicom_tap.txt"
    grep -q '^\(not \)\?ok - ' "$dir/pydicom_tap.txt" || fail "check_dicom.py ran" "$(cat "$dir/pydicom_tap.txt")"
else
    skip "pydicom not installed (for /usr/bin/python3)"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
