"""Batched FISTA vs a loop of scikit-learn Lasso (see unrolled.experiments.bench_fista_sklearn).

    python benchmarks/bench_fista_vs_sklearn.py [--n-problems 1000 --m 250 --n 500 --device cpu --out FILE]
"""

from unrolled.experiments.bench_fista_sklearn import main

if __name__ == "__main__":
    main()
