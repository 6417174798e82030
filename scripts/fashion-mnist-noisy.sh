#!/usr/bin/env bash
# A real-data experiment: Fashion-MNIST with 40% uniform label noise, baseline (no data parameters) vs
# instance-level curriculum, same seed, same noisy labels. Prints test top-1 per epoch for both and, for the
# curriculum, the fraction of corrupted samples among the top 40% by instance σ.
#
# Installs Debian's dataset-fashion-mnist (real data, /usr/share/datasets/fashion-mnist) when it is absent.
# Sized by environment variables (how long the defaults take: docs/benchmarks.md):
#   SUBSET   training images (stratified, seeded subset of the 60k; 0 = all)   default 10000
#   EPOCHS   epochs per run                                                    default 6
#   VAL      test images evaluated per epoch (stratified subset; 0 = all 10k)  default 2000
#   BACKEND  auto | wasm | cpu | ...                                           default auto
#   OUT      run directories                                                   default runs/fashion-mnist-noisy
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=/usr/share/datasets/fashion-mnist
SUBSET=${SUBSET:-10000}
EPOCHS=${EPOCHS:-6}
VAL=${VAL:-2000}
BACKEND=${BACKEND:-auto}
OUT=${OUT:-runs/fashion-mnist-noisy}

if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ]; then
  echo "installing dataset-fashion-mnist (Debian package) ..." >&2
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist >&2 || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist >&2; }
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist >&2
  fi
fi

if [ ! -f dist/classification/cli/train-classifier.js ]; then npx tsc -p . ; fi

subset_args=()
[ "$SUBSET" != 0 ] && subset_args+=(--train-subset "$SUBSET")
[ "$VAL" != 0 ] && subset_args+=(--val-subset "$VAL")

start=$(date +%s)
for curriculum in none instance; do
  echo "== $curriculum: $([ "$SUBSET" = 0 ] && echo 60000 || echo "$SUBSET") training images, $EPOCHS epochs, 40% uniform noise ==" >&2
  node dist/classification/cli/train-classifier.js --config configs/fashion-mnist.json --data "$DATA" \
    --curriculum "$curriculum" --noise-rate 0.4 --noise-model uniform --epochs "$EPOCHS" "${subset_args[@]}" \
    --backend "$BACKEND" --seed 0 --out "$OUT/$curriculum" --no-progress
done
echo "total $(( $(date +%s) - start )) s" >&2
node dist/classification/cli/noisy-report.js "$OUT/none" "$OUT/instance"
