"""The report's fixed text in English (default) and Chinese (``--lang zh``, the course's language).

Translated here: headings, labels, captions' prefixes, the brief's questions of the outline and the
sentence templates of :mod:`digitlab.report.answers`. The findings, captions and notes that a task
writes stay in the task's language (English); the Chinese report says so once.

A Chinese PDF needs a CJK font: :func:`cjk_font` finds one through fontconfig (any font that covers
Chinese, e.g. Debian's ``fonts-wqy-microhei`` or ``fonts-noto-cjk``) or raises a one-line error that
says how to install one.
"""

from __future__ import annotations

import shutil
import subprocess

from digitlab.exceptions import DigitlabError

LANGS = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "contents": "Contents",
        "key_findings": "Key findings",
        "question": "Question.",
        "method": "Method",
        "results": "Results",
        "findings": "Findings",
        "answer": "Answer.",
        "conclusions": "Conclusions",
        "figure": "Figure",
        "table": "Table",
        "appendix": "Appendix",
        "long_tables": "Long tables",
        "environment": "Run and environment",
        "other": "Other results",
        "other_intro": "Tasks of this run that answer no numbered question of the brief.",
        "not_run": "Not part of this run. To add it:",
        "missing_results": "Missing results.",
        "missing_figure": "Figure {n} is missing.",
        "rerun": "Rerun the task to restore it.",
        "it_showed": "It showed:",
        "continued": "Table {n}, continued: more columns.",
        "html_only": "In report.html only:",
        "rows": "rows",
        "more_findings": "{k} more of this section's {n} findings are in report.html.",
        "in_appendix": "It is printed in Appendix A, page",
        "no_answer": "The stored results hold no summary sentence for this question; see the findings above.",
        "no_key": "No task of this run produced a result that can be summarised.",
        "first_rows": "first {k} of {n} rows; all of them are in results/{task}/result.json",
        "hover": "Hover a point to see the image.",
        "run_line": "Dataset <b>{dataset}</b> · profile <b>{profile}</b> · run {finished} · {seconds} on {device}",
        "provenance": "Every number, table, figure and finding in this report was computed by the run <code>{folder}</code> "
        "(digitlab {version}, code {code}, seed {seed}); the report was assembled on {today} from its stored results.",
        "damaged": "This run folder is damaged.",
        "metrics_method": "Every model of part 3.2 and the CNN of part 3.3 is scored with the same suite on the same test "
        "images. Table {n} defines each measure as digitlab computes it (scikit-learn where it provides the score).",
        "metrics_caption": "The metrics computed for every model, how each is defined and what it means in practice.",
        "metric_headers": "metric|definition|what it tells|can mislead when",
        "env_headers": "task|time|cached|result",
        "yes": "yes",
        "no": "no",
        "packages": "Packages:",
        "env_note": "The resolved configuration is in <code>config.toml</code> beside this report; <code>digitlab run "
        "--config config.toml</code> reruns the study (cached tasks are reused) and <code>digitlab report "
        "{folder}</code> rebuilds this report.",
        "not_answered": "Not answered by this run (its tasks were not run or their results are missing).",
        "task_absent": "The task “{name}” was not part of this run; add it with <code>{how}</code> (or run the whole study).",
        "task_unknown": "The task “{name}” is not available in this version of digitlab, so this question is not answered yet.",
        "section_missing": "This section is missing: {error}. Rerun the task to restore it.",
        "language_note": "",
        "default_title": "Handwritten-digit classification: a complete study",
        "explorer": "Explorer",
    },
    "zh": {
        "contents": "目录",
        "key_findings": "主要发现",
        "question": "问题：",
        "method": "方法",
        "results": "结果",
        "findings": "发现",
        "answer": "回答：",
        "conclusions": "结论",
        "figure": "图",
        "table": "表",
        "appendix": "附录",
        "long_tables": "长表格",
        "environment": "运行与环境",
        "other": "其他结果",
        "other_intro": "本次运行中不对应课程任务编号的任务。",
        "not_run": "本次运行未包含此部分。添加方法：",
        "missing_results": "结果缺失。",
        "missing_figure": "图 {n} 缺失。",
        "rerun": "重新运行该任务即可恢复。",
        "it_showed": "原图内容：",
        "continued": "表 {n}（续）：其余各列。",
        "html_only": "仅见于 report.html：",
        "rows": "行",
        "more_findings": "本节共 {n} 条发现，其余 {k} 条见 report.html。",
        "in_appendix": "完整表格见附录 A，第",
        "no_answer": "存储的结果中没有针对此问题的概括句；请参见上面的发现。",
        "no_key": "本次运行没有可以概括的结果。",
        "first_rows": "前 {k} 行，共 {n} 行；全部数据见 results/{task}/result.json",
        "hover": "将鼠标悬停在点上可查看图像。",
        "run_line": "数据集 <b>{dataset}</b> · 配置 <b>{profile}</b> · 运行于 {finished} · 用时 {seconds}，设备 {device}",
        "provenance": "本报告中的每个数字、表格、图和发现均由运行 <code>{folder}</code> 计算得出（digitlab {version}，"
        "代码 {code}，随机种子 {seed}）；报告于 {today} 根据其存储的结果生成。",
        "damaged": "此运行文件夹已损坏。",
        "metrics_method": "3.2 节的每个模型和 3.3 节的 CNN 都在相同的测试图像上用同一套指标评估。表 {n} 给出了 digitlab "
        "计算每个指标的方式（若 scikit-learn 提供该指标则直接调用）。",
        "metrics_caption": "每个模型计算的指标：定义及其实际含义。",
        "metric_headers": "指标|定义|含义|何时会误导",
        "env_headers": "任务|用时|缓存|结果",
        "yes": "是",
        "no": "否",
        "packages": "软件包：",
        "env_note": "解析后的完整配置保存在本报告旁的 <code>config.toml</code> 中；<code>digitlab run --config config.toml</code> "
        "可重新运行本研究（已缓存的任务会被复用），<code>digitlab report {folder}</code> 可重新生成本报告。",
        "not_answered": "本次运行未回答此问题（相关任务未运行或结果缺失）。",
        "task_absent": "本次运行未包含任务“{name}”；可用 <code>{how}</code> 添加（或运行完整研究）。",
        "task_unknown": "当前版本的 digitlab 尚未提供任务“{name}”，因此该问题暂未回答。",
        "section_missing": "此部分缺失：{error}。重新运行该任务即可恢复。",
        "language_note": "说明：标题、问题、回答与结论为中文；各任务自动生成的发现、图注和方法说明以英文给出，其中的数字均来自本次运行。",
        "default_title": "手写数字分类：完整研究报告",
        "explorer": "交互式浏览器",
    },
}

# The outline in Chinese: section titles, part titles and the brief's questions (paraphrased).
OUTLINE_ZH: dict[str, str] = {
    "Task 1": "任务一",
    "Task 2": "任务二",
    "Task 3": "任务三",
    "Task 4": "任务四",
    "Task 5": "任务五",
    "Bonus 1": "附加任务一",
    "Bonus 2": "附加任务二",
    "Data preprocessing": "数据预处理",
    "Visualisation and augmentation": "可视化与数据增强",
    "Classification on the official split": "在官方划分上的分类",
    "How much training data is needed": "需要多少训练数据",
    "Errors, under-fitting and over-fitting": "错误、欠拟合与过拟合",
    "Clustering": "聚类",
    "Diabetic-retinopathy grading": "糖尿病视网膜病变分级",
    "Reading the data and a first look": "读取数据与初步观察",
    "Simple statistical features": "简单统计特征",
    "Dimension reduction": "降维",
    "Data augmentation": "数据增强",
    "Performance metrics": "性能指标",
    "Classic models": "经典模型",
    "A convolutional network": "卷积神经网络",
    "Accuracy against training-set size": "准确率与训练集规模",
    "The images the models get wrong": "模型分错的图像",
    "Regularisation and model complexity": "正则化与模型复杂度",
    "Clusters of images and of network layers": "图像与网络层的聚类",
    "The same study on fundus photographs": "在眼底照片上的同一研究",
}
QUESTIONS_ZH: dict[str, str] = {
    "1.1": "读取图像和标签，检查数据规模和类别，查看样例和像素取值，并在 28×28 图像与经典模型读取的 784 维向量之间转换。",
    "1.2": "计算简单的图像统计量（平均亮度、二值化后的墨迹像素比例等），找出哪些特征真正携带了数字类别的信息。",
    "2.1": "用 PCA、t-SNE、UMAP 将图像降到二维并按类别作图，描述样本的分布情况并解释可能的原因。",
    "2.2": "施加噪声、翻转、裁剪等变换，观察它们如何改变数据分布，判断每种增强是否有助于分类，并解释为什么有些增强不适合手写数字。",
    "3.1": "哪些指标可以描述分类器的性能？每个指标如何计算？在实践中意味着什么？",
    "3.2": "训练至少三种经典方法（如决策树、随机森林、SVM、逻辑回归），比较它们的全部指标，并解释它们在该数据上表现差异的原因。",
    "3.3": "训练一个 CNN，与经典方法比较，并通过实验研究超参数、网络深度和网络结构对结果的影响。",
    "4.1": "从每个数字约一百张图像开始，逐步增加训练集，跟踪各模型的准确率与收敛情况，观察收益何时趋于平缓并判断多大的数据量足够；"
    "在同一测试集上比较用 1,000、10,000 和全部图像训练的模型。",
    "5.1": "记录每个模型分错的测试图像并在二维图中显示，检查不同模型是否在相同的图像上出错，并描述这些图像为何困难。",
    "5.2": "改变 L1、L2 正则化强度和（逐层的）dropout，比较从感知机到深层网络的不同复杂度模型，"
    "对照训练集、验证集和测试集的得分，选出既不过拟合也不欠拟合的模型。",
    "B1": "用至少两种方法对图像聚类，在二维图中显示聚类并度量其与真实标签的一致性；再对每个卷积层的输出做同样的聚类，观察一致性如何随深度变化。",
    "B2": "将数字换成五级分级的眼底照片（DDR），训练并评估相同的算法和模型，观察指标是否明显不同，并检验数字上的数据增强在此处的表现。",
}


def strings(lang: str) -> dict[str, str]:
    if lang not in LANGS:
        raise DigitlabError(f"--lang {lang!r}: not a report language; choose {' or '.join(LANGS)}")
    return STRINGS[lang]


# The report's default title and the plural noun for the data's images, by the dataset's ``meta["kind"]``
# (digitlab.data: "digits", "clothing", "fundus", "images"); a run whose summary has no kind is the digits one.
SUBJECTS: dict[str, dict[str, str]] = {
    "en": {
        "digits": "Handwritten-digit classification",
        "clothing": "Clothing-image classification",
        "fundus": "Diabetic-retinopathy grading of fundus photographs",
        "": "Image classification",
    },
    "zh": {
        "digits": "手写数字分类",
        "clothing": "服装图像分类",
        "fundus": "眼底照片的糖尿病视网膜病变分级",
        "": "图像分类",
    },
}
ITEMS_ZH: dict[str, str] = {
    "digits": "手写数字",
    "clothing": "服装图像",
    "fundus": "眼底照片",
    "": "这些图像",
}


def _meta(dataset: dict | None) -> dict:
    meta = (dataset or {}).get("meta") if isinstance(dataset, dict) else None
    return meta if isinstance(meta, dict) else {}


def default_title(dataset: dict | None, lang: str = "en") -> str:
    """The title page's title when none is given: the subject named by the dataset's kind (its summary
    as stored in the run's summary.json, ``meta`` included); the digits title for runs without one."""
    T = strings(lang)
    kind = _meta(dataset).get("kind")
    if not kind or kind == "digits":
        return T["default_title"]
    subject = SUBJECTS[lang].get(kind, SUBJECTS[lang][""])
    return f"{subject}{'：完整研究报告' if lang == 'zh' else ': a complete study'}"


def items(dataset: dict | None, lang: str = "en") -> str:
    """The data's images in a plural noun for sentences: "digits", "fundus photographs", "garments" (from
    ``meta["item_noun"]``; "digits" for runs without one, "these images" when only the kind is unknown)."""
    meta = _meta(dataset)
    if lang == "zh":
        return ITEMS_ZH.get(meta.get("kind") or "digits", ITEMS_ZH[""])
    noun = meta.get("item_noun")
    if not meta:
        return "digits"
    if not isinstance(noun, str) or not noun.strip():
        return "these images"
    noun = noun.strip()
    return noun if noun.endswith("s") else noun + "s"


def outline_text(text: str, lang: str) -> str:
    return OUTLINE_ZH.get(text, text) if lang == "zh" else text


def question(number: str, text: str, lang: str) -> str:
    return QUESTIONS_ZH.get(number, text) if lang == "zh" else text


def cjk_font() -> str:
    """The family name of an installed font that covers Chinese (fontconfig), or a one-line DigitlabError."""
    hint = (
        "no font with Chinese characters found for the PDF; install one, e.g. `apt-get install fonts-wqy-microhei` "
        "(or fonts-noto-cjk), or use --lang en"
    )
    if not shutil.which("fc-list"):
        raise DigitlabError(hint)
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        raise DigitlabError(hint) from None
    families = sorted({line.split(",")[0].strip() for line in out.splitlines() if line.strip()})
    if not families:
        raise DigitlabError(hint)
    preferred = [f for f in families if "Mono" not in f and ("Sans" in f or "Hei" in f)]
    return (preferred or families)[0]


__all__ = ["LANGS", "STRINGS", "strings", "outline_text", "question", "cjk_font"]
