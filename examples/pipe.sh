#!/usr/bin/env bash
# The chain with Unix pipes: where a stage streams, it reads the previous one's Arrow IPC stream on stdin and
# nothing in between touches the disk. Same stages and seeds as the Makefile, so the features are the same bytes.
#
#   bash examples/pipe.sh [OUT]                      # toy events → features → ... → eval/roc.png (OUT: pipe-out)
#   STOP=features bash examples/pipe.sh run2         # only OUT/features/<process>.arrow
#   DELPHES_QCD=qcd.root DELPHES_TTBAR=tt.root DELPHES_WJETS=w.root MUONS=Muon bash examples/pipe.sh real
#
# Settings (environment): HEPML (the command; default: this checkout's bin/run.js, else hep-ml on PATH),
# SEED, QCD_EVENTS, TTBAR_EVENTS, WJETS_EVENTS, DELPHES_<PROCESS>, TREE, MUONS, RECIPE, MODEL, EPOCHS, LR,
# WORKERS, STOP (features | prepare | train).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${HEPML:-}" ]; then
  if [ -f "$here/../bin/run.js" ] && [ -d "$here/../dist" ]; then HEPML="node $here/../bin/run.js"; else HEPML=hep-ml; fi
fi
OUT=${1:-pipe-out}
SEED=${SEED:-42}
QCD_EVENTS=${QCD_EVENTS:-10000} TTBAR_EVENTS=${TTBAR_EVENTS:-1300} WJETS_EVENTS=${WJETS_EVENTS:-1100}
TREE=${TREE:-Delphes} MUONS=${MUONS:-MuonTight} RECIPE=${RECIPE:-sparkdltrigger}
MODEL=${MODEL:-inclusive} EPOCHS=${EPOCHS:-8} LR=${LR:-0.01} WORKERS=${WORKERS:-2}
STOP=${STOP:-}
q=(--progress none)
hepml() { $HEPML "$@"; }   # word-splits HEPML ("node .../run.js") and keeps every argument whole

mkdir -p "$OUT/features"

# 1. events | features, per process: toy events from generate, or real Delphes files through ingest
#    (only the branches the recipe reads, as listed by `features --print-branches`).
for p in qcd ttbar wjets; do
  files_var=DELPHES_${p^^}
  events_var=${p^^}_EVENTS
  if [ -n "${!files_var:-}" ]; then
    read -r -a files <<<"${!files_var}"
    mapfile -t branches < <(hepml features --print-branches --muons "$MUONS")
    hepml ingest "${files[@]}" --tree "$TREE" "${branches[@]/#/--branches=}" "${q[@]}" -o - \
      | hepml features - --recipe "$RECIPE" --muons "$MUONS" --label "$p" "${q[@]}" -o "$OUT/features/$p.arrow"
  else
    hepml generate --process "$p" --events "${!events_var}" --seed "$SEED" --muons "$MUONS" "${q[@]}" -o - \
      | hepml features - --recipe "$RECIPE" --muons "$MUONS" --label "$p" "${q[@]}" -o "$OUT/features/$p.arrow"
  fi
done
[ "$STOP" = features ] && exit 0

# 2. Labels, equal classes, scaling, split, shuffle: needs every class at once, so files in, files out.
hepml prepare --class "qcd=$OUT/features/qcd.arrow" --class "ttbar=$OUT/features/ttbar.arrow" \
  --class "wjets=$OUT/features/wjets.arrow" --undersample --seed "$SEED" "${q[@]}" --out "$OUT/data"
[ "$STOP" = prepare ] && exit 0

# 3. Training on the shuffled training set, validated on the test set after every epoch.
hepml train --model "$MODEL" --data "$OUT/data/train.arrow" --validation "$OUT/data/test.arrow" --epochs "$EPOCHS" \
  --lr "$LR" --seed "$SEED" --workers "$WORKERS" --overwrite "${q[@]}" --out "$OUT/model"
[ "$STOP" = train ] && exit 0

# 4. The test set through the model: metrics and plots in OUT/eval (the table on stdout).
hepml evaluate --model "$OUT/model" --data "$OUT/data/test.arrow" "${q[@]}" --out "$OUT/eval"

# 5. Per-event probabilities, streamed into a Parquet file for pandas, ROOT's RDataFrame or DuckDB.
hepml predict --model "$OUT/model" --data "$OUT/data/test.arrow" "${q[@]}" -o - \
  | hepml convert - --to parquet "${q[@]}" -o "$OUT/scores.parquet"

echo "ROC curve: $(cd "$OUT" && pwd)/eval/roc.png" >&2
