"""Knowledge distillation: a model learns from the labels and from teachers' softened probabilities.

Hinton et al. (2015): the teachers' probabilities at a temperature T carry which wrong classes a
face resembles, which one-hot labels do not; an ensemble of teachers distilled into one small
model keeps much of the ensemble's lead at one model's cost (issue 14 lists it to try). The
teachers run inside the training step, on the same augmented batch as the student, so a GPU
feeds them too: computed in the CPU feeder they would starve it."""

from __future__ import annotations

from pathlib import Path

from fer.config import DistillConfig, ModelConfig
from fer.errors import FerError
from fer.keras_env import keras
from fer.metadata import LABELS_FILE, read_metadata_file

k = keras()


def check_teachers(paths: tuple[str, ...], labels: tuple[str, ...], model: ModelConfig) -> None:
    """Refuse, in one line each and before a run folder is made, a teacher that is missing, not a
    `.keras` file (an ONNX file cannot run inside the training step), or made for other labels
    or another input than the model being trained."""
    for path in map(Path, paths):
        if not path.is_file():
            raise FerError(f"teacher {path} not found; give a fer-train run's model.keras")
        if path.suffix.lower() != ".keras":
            raise FerError(f"teacher {path} is not a .keras model; distillation runs the teacher "
                           "inside training, so give the run's model.keras, not its ONNX export")
        meta = read_metadata_file(path.with_name(LABELS_FILE))
        if tuple(meta["labels"]) != tuple(labels):
            raise FerError(f"teacher {path} predicts {', '.join(meta['labels'])}; this run trains "
                           f"{', '.join(labels)}: teach with a model of the same classes, in order")
        shape = (int(meta["input"]["height"]), int(meta["input"]["width"]),
                 int(meta["input"]["channels"]))
        wanted = (model.input_size, model.input_size, model.channels)
        if shape != wanted:
            raise FerError(f"teacher {path} takes {'x'.join(map(str, shape))} crops; this run "
                           f"trains on {'x'.join(map(str, wanted))}: set model.input_size / "
                           "model.channels alike")


def load_teachers(paths: tuple[str, ...]) -> list:
    """The teachers, frozen (their batch-norm statistics included)."""
    teachers = []
    for path in paths:
        try:
            teacher = k.models.load_model(path, compile=False)
        except Exception as e:  # keras raises ValueError/OSError/zipfile errors for bad files
            raise FerError(f"teacher {path} is not a loadable Keras model ({type(e).__name__})") from e
        teacher.trainable = False
        teachers.append(teacher)
    return teachers


def softened(probs, temperature: float):
    """softmax(log(p) / T): the same class order as p, flatter for T > 1."""
    logits = k.ops.log(k.ops.clip(k.ops.cast(probs, "float32"), 1e-7, 1.0))
    return k.ops.softmax(logits / temperature, axis=-1)


@k.saving.register_keras_serializable(package="fer")
class Distiller(k.Model):
    """The model being trained, with its teachers beside it for the loss.

    It predicts what the student predicts, so accuracy, early stopping and the best-model file
    follow the student; its loss is (1 - alpha) x the compiled loss on the labels + alpha x T^2 x
    KL(teachers' mean softened probabilities || the student's), weighted per face like the labels
    (T^2 keeps the soft term's gradients on the scale of the hard one's). Saved whole, it is the
    resume checkpoint; `student_of` takes the student out for the model file."""

    def __init__(self, student, teachers, alpha: float = 0.5, temperature: float = 4.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.student, self.teachers = student, list(teachers)
        for teacher in self.teachers:
            teacher.trainable = False
        self.alpha, self.temperature = float(alpha), float(temperature)
        self.soft_loss = k.losses.KLDivergence()

    def call(self, x, training=False):
        return self.student(x, training=training)

    def teacher_probs(self, x):
        """The teachers' mean softened probabilities (inference mode: dropout off, statistics
        frozen)."""
        soft = [softened(t(x, training=False), self.temperature) for t in self.teachers]
        return soft[0] if len(soft) == 1 else k.ops.mean(k.ops.stack(soft), axis=0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        hard = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                    training=training)
        target = k.ops.stop_gradient(self.teacher_probs(x))
        soft = self.soft_loss(target, softened(y_pred, self.temperature), sample_weight)
        return (1.0 - self.alpha) * hard + self.alpha * self.temperature ** 2 * soft

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha, "temperature": self.temperature,
                "student": k.saving.serialize_keras_object(self.student),
                "teachers": [k.saving.serialize_keras_object(t) for t in self.teachers]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        student = k.saving.deserialize_keras_object(config.pop("student"))
        teachers = [k.saving.deserialize_keras_object(t) for t in config.pop("teachers")]
        return cls(student, teachers, **config)


def with_teachers(student, cfg: DistillConfig):
    """`student` wrapped for distillation when `cfg` names teachers, else `student` itself."""
    if not cfg.teachers:
        return student
    return Distiller(student, load_teachers(cfg.teachers), cfg.alpha, cfg.temperature,
                     name=f"{student.name}_distilled")


def student_of(model):
    """The model being trained, without its teachers."""
    return model.student if isinstance(model, Distiller) else model
